//! Taking `plugin.wasm` out of a compat image's layer (a tar, usually gzipped) without trusting
//! it: the decompressed stream is counted as it is read and refused past a limit, and the module
//! is read only up to the module limit, so a small layer that inflates to gigabytes (a "tar
//! bomb") costs a bounded amount of memory and CPU and never touches the disk.
//!
//! Synchronous and CPU-bound: call it from `spawn_blocking`.

use std::cell::Cell;
use std::io::{self, Read};
use std::rc::Rc;

use flate2::read::MultiGzDecoder;

use super::layout::COMPAT_FILE;
use crate::pipeline::PipelineError;

/// How many entry names an error message lists.
const NAMES_SHOWN: usize = 8;

/// Extracts [`COMPAT_FILE`] from `layer`: at most `max_module` bytes for the file and
/// `max_total` bytes of decompressed tar in all.
pub fn extract(
    layer: &[u8],
    gzip: bool,
    max_module: u64,
    max_total: u64,
) -> Result<Vec<u8>, PipelineError> {
    let exceeded = Rc::new(Cell::new(false));
    let input: Box<dyn Read> = if gzip {
        Box::new(MultiGzDecoder::new(layer))
    } else {
        Box::new(layer)
    };
    let counted = Limited {
        inner: input,
        left: max_total,
        exceeded: Rc::clone(&exceeded),
    };
    let over_total = || PipelineError::too_large("the decompressed layer", max_total, None);
    let mut archive = tar::Archive::new(counted);
    let unreadable = |e: io::Error| {
        if exceeded.get() {
            over_total()
        } else {
            PipelineError::unsupported(format!(
                "the layer is not a readable tar{}: {e}",
                if gzip { ".gz" } else { "" }
            ))
        }
    };
    let mut names = Vec::new();
    for entry in archive.entries().map_err(unreadable)? {
        let mut entry = entry.map_err(unreadable)?;
        let path = entry.path().map_err(unreadable)?.into_owned();
        let name = path
            .to_string_lossy()
            .trim_start_matches("./")
            .trim_start_matches('/')
            .to_owned();
        if name != COMPAT_FILE {
            if names.len() < NAMES_SHOWN {
                names.push(name);
            }
            continue;
        }
        if !entry.header().entry_type().is_file() {
            return Err(PipelineError::unsupported(format!(
                "{COMPAT_FILE} in the layer is not a regular file"
            )));
        }
        let size = entry.header().size().map_err(unreadable)?;
        if size > max_module {
            return Err(PipelineError::too_large(
                "plugin.wasm in the layer",
                max_module,
                Some(size),
            ));
        }
        let mut module = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        (&mut entry)
            .take(max_module + 1)
            .read_to_end(&mut module)
            .map_err(unreadable)?;
        return Ok(module);
    }
    Err(PipelineError::unsupported(format!(
        "the image layer holds no {COMPAT_FILE} (found: {})",
        if names.is_empty() {
            "nothing".to_owned()
        } else {
            names.join(", ")
        }
    )))
}

/// A reader that fails once more than `left` bytes have come through, and says so in `exceeded`.
struct Limited<R> {
    inner: R,
    left: u64,
    exceeded: Rc<Cell<bool>>,
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let n64 = n as u64;
        if n64 > self.left {
            self.exceeded.set(true);
            return Err(io::Error::other("decompressed size limit exceeded"));
        }
        self.left -= n64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::{Compression, write::GzEncoder};

    use super::*;
    use crate::pipeline::Reason;

    fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, data) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder.append_data(&mut header, name, *data).unwrap();
        }
        builder.into_inner().unwrap()
    }

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn finds_plugin_wasm_among_other_files() {
        let layer = gz(&tar_of(&[
            ("README", b"hi"),
            ("./plugin.wasm", b"\0asm\x01\0\0\0"),
        ]));
        assert_eq!(
            extract(&layer, true, 100, 10_000).unwrap(),
            b"\0asm\x01\0\0\0"
        );
        let plain = tar_of(&[("plugin.wasm", b"x")]);
        assert_eq!(extract(&plain, false, 100, 10_000).unwrap(), b"x");
    }

    #[test]
    fn a_missing_module_lists_what_is_there() {
        let layer = gz(&tar_of(&[("etc/passwd", b"root")]));
        let e = extract(&layer, true, 100, 10_000).unwrap_err();
        assert_eq!(e.reason(), Reason::UnsupportedArtifact);
        assert!(e.to_string().contains("found: etc/passwd"), "{e}");
        let e = extract(b"not gzip", true, 100, 10_000).unwrap_err();
        assert_eq!(e.reason(), Reason::UnsupportedArtifact);
    }

    #[test]
    fn bombs_stop_at_the_limits() {
        let big = vec![0u8; 1 << 20];
        let layer = gz(&tar_of(&[("plugin.wasm", &big)]));
        let e = extract(&layer, true, 1000, 10 << 20).unwrap_err();
        assert!(
            e.to_string()
                .contains("is 1048576 bytes, over the limit of 1000"),
            "{e}"
        );
        let padding = gz(&tar_of(&[("junk", &big), ("plugin.wasm", b"x")]));
        let e = extract(&padding, true, 1000, 100_000).unwrap_err();
        assert_eq!(e.reason(), Reason::TooLarge);
        assert!(e.to_string().contains("decompressed layer exceeds"), "{e}");
    }
}
