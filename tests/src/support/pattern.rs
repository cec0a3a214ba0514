//! A known byte pattern for large bodies, and a cheap checksum to compare them end to end.
//!
//! Byte `i` of a pattern body is `i % 251`: a period prime to every power-of-two chunk size, so
//! a dropped, duplicated or reordered chunk changes the checksum.

use std::sync::LazyLock;

use bytes::Bytes;

const PERIOD: u64 = 251;

/// Largest chunk [`chunk`] hands out at once.
pub const MAX_CHUNK: usize = 64 * 1024;

static TILE: LazyLock<Bytes> = LazyLock::new(|| {
    let len = MAX_CHUNK + PERIOD as usize;
    (0..len)
        .map(|i| (i as u64 % PERIOD) as u8)
        .collect::<Vec<u8>>()
        .into()
});

/// The `len` bytes of the pattern starting at `offset` (`len` is capped at [`MAX_CHUNK`]).
pub fn chunk(offset: u64, len: usize) -> Bytes {
    let start = (offset % PERIOD) as usize;
    TILE.slice(start..start + len.min(MAX_CHUNK))
}

/// The first `len` bytes of the pattern, in memory.
pub fn bytes(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        let part = chunk(out.len() as u64, len - out.len());
        out.extend_from_slice(&part);
    }
    out
}

/// The checksum of the first `len` bytes of the pattern.
pub fn checksum(len: u64) -> String {
    let mut sum = Checksum::new();
    let mut offset = 0;
    while offset < len {
        let part = chunk(offset, (len - offset).min(MAX_CHUNK as u64) as usize);
        sum.update(&part);
        offset += part.len() as u64;
    }
    sum.finish()
}

/// A streaming 64-bit checksum (FNV-style over little-endian words) plus a byte count.
#[derive(Clone, Copy, Debug)]
pub struct Checksum {
    hash: u64,
    len: u64,
    tail: [u8; 8],
    tail_len: usize,
}

impl Default for Checksum {
    fn default() -> Self {
        Self::new()
    }
}

impl Checksum {
    /// An empty checksum.
    pub fn new() -> Self {
        Self {
            hash: 0xcbf2_9ce4_8422_2325,
            len: 0,
            tail: [0; 8],
            tail_len: 0,
        }
    }

    /// Feeds `data`; chunk boundaries do not change the result.
    pub fn update(&mut self, mut data: &[u8]) {
        self.len += data.len() as u64;
        if self.tail_len > 0 {
            let take = (8 - self.tail_len).min(data.len());
            self.tail[self.tail_len..self.tail_len + take].copy_from_slice(&data[..take]);
            self.tail_len += take;
            data = &data[take..];
            if self.tail_len < 8 {
                return;
            }
            self.mix(u64::from_le_bytes(self.tail));
            self.tail_len = 0;
        }
        let mut words = data.chunks_exact(8);
        for word in &mut words {
            let mut buf = [0; 8];
            buf.copy_from_slice(word);
            self.mix(u64::from_le_bytes(buf));
        }
        let rest = words.remainder();
        self.tail[..rest.len()].copy_from_slice(rest);
        self.tail_len = rest.len();
    }

    /// Bytes fed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was fed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The checksum as 16 hex digits.
    pub fn finish(&self) -> String {
        let mut last = *self;
        let mut tail = [0; 8];
        tail[..self.tail_len].copy_from_slice(&self.tail[..self.tail_len]);
        last.mix(u64::from_le_bytes(tail));
        last.mix(self.len);
        format!("{:016x}", last.hash)
    }

    fn mix(&mut self, word: u64) {
        self.hash = (self.hash ^ word)
            .wrapping_mul(0x0100_0000_01b3)
            .rotate_left(23);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunking_does_not_change_the_checksum() {
        let data = bytes(100_003);
        let mut whole = Checksum::new();
        whole.update(&data);
        let mut pieces = Checksum::new();
        for part in data.chunks(13) {
            pieces.update(part);
        }
        assert_eq!(whole.finish(), pieces.finish());
        assert_eq!(whole.finish(), checksum(100_003));
        assert_ne!(checksum(100_003), checksum(100_002));
    }
}
