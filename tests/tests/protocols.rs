//! Every downstream protocol (HTTP/1.1, h2c, TLS with ALPN h2, TLS with ALPN http/1.1) through every
//! upstream protocol setting (http1, http2, auto) carries bodies of a few MB unchanged, both ways,
//! and the upstream is spoken to in the protocol the setting asks for.

use anyhow::{Context, Result, ensure};
use http::Version;
use proxlet_tests::support::{
    curl::Curl, pattern, sidecar::Sidecar, tls::TestCerts, upstream::Upstream,
};
use tempfile::TempDir;

/// Download size: a few MB, and not a multiple of any chunk size.
const DOWN: u64 = 3 * 1024 * 1024 + 17;
/// Upload size.
const UP: usize = 2 * 1024 * 1024 + 5;

#[derive(Clone, Copy, Debug)]
enum Downstream {
    Http1,
    H2c,
    TlsH2,
    TlsHttp1,
}

impl Downstream {
    fn curl(self, url: String, certs: &TestCerts) -> Curl {
        match self {
            Self::Http1 => Curl::new(url).http1(),
            Self::H2c => Curl::new(url).h2c(),
            Self::TlsH2 => Curl::new(url).h2_tls(&certs.cert),
            Self::TlsHttp1 => Curl::new(url).http1_tls(&certs.cert),
        }
    }

    fn version(self) -> Version {
        match self {
            Self::Http1 | Self::TlsHttp1 => Version::HTTP_11,
            Self::H2c | Self::TlsH2 => Version::HTTP_2,
        }
    }

    /// What curl's `%{http_version}` prints for this protocol.
    fn curl_version(self) -> &'static str {
        match self.version() {
            Version::HTTP_2 => "2",
            _ => "1.1",
        }
    }
}

/// The version the upstream must see for `setting` when the client spoke `down`.
fn upstream_version(setting: &str, down: Downstream) -> Version {
    match setting {
        "http1" => Version::HTTP_11,
        "http2" => Version::HTTP_2,
        _ => down.version(),
    }
}

struct Rig {
    upstream: Upstream,
    plain: Sidecar,
    tls: Sidecar,
    certs: TestCerts,
    upload: std::path::PathBuf,
    _dir: TempDir,
}

impl Rig {
    async fn start(setting: &str) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let certs = TestCerts::generate(dir.path())?;
        let upload = dir.path().join("upload.bin");
        std::fs::write(&upload, pattern::bytes(UP))?;
        let upstream = Upstream::start().await?;
        let builder = Sidecar::builder(upstream.addr()).set("upstream.protocol", setting);
        let plain = builder.start().await?;
        let tls = builder.tls(&certs).start().await?;
        Ok(Self {
            upstream,
            plain,
            tls,
            certs,
            upload,
            _dir: dir,
        })
    }

    fn sidecar(&self, down: Downstream) -> &Sidecar {
        match down {
            Downstream::Http1 | Downstream::H2c => &self.plain,
            Downstream::TlsH2 | Downstream::TlsHttp1 => &self.tls,
        }
    }

    async fn download(&self, setting: &str, down: Downstream) -> Result<()> {
        let url = self.sidecar(down).url(&format!("/bytes/{DOWN}"));
        let reply = down.curl(url, &self.certs).checksum_only().run().await?;
        reply.ok()?;
        ensure!(
            reply.status == 200,
            "status {} (headers {:?})",
            reply.status,
            reply.headers
        );
        ensure!(
            reply.http_version == down.curl_version(),
            "curl spoke HTTP/{}",
            reply.http_version
        );
        ensure!(
            reply.checksum.len() == DOWN,
            "got {} bytes, want {DOWN}",
            reply.checksum.len()
        );
        ensure!(
            reply.checksum.finish() == pattern::checksum(DOWN),
            "downloaded bytes differ from the upstream's"
        );
        self.check_upstream_version(setting, down)
    }

    async fn upload(&self, setting: &str, down: Downstream) -> Result<()> {
        let url = self.sidecar(down).url("/echo");
        let reply = down
            .curl(url, &self.certs)
            .post_file(&self.upload)
            .checksum_only()
            .run()
            .await?;
        reply.ok()?;
        ensure!(
            reply.status == 200,
            "status {} (headers {:?})",
            reply.status,
            reply.headers
        );
        ensure!(
            reply.checksum.len() == UP as u64,
            "echoed {} bytes, sent {UP}",
            reply.checksum.len()
        );
        ensure!(
            reply.checksum.finish() == pattern::checksum(UP as u64),
            "echoed bytes differ from the sent ones"
        );
        self.check_upstream_version(setting, down)
    }

    fn check_upstream_version(&self, setting: &str, down: Downstream) -> Result<()> {
        let seen = self
            .upstream
            .last()
            .context("the upstream saw no request")?;
        let want = upstream_version(setting, down);
        ensure!(
            seen.version == want,
            "upstream saw {:?}, want {want:?}",
            seen.version
        );
        Ok(())
    }
}

async fn every_downstream(setting: &str) -> Result<()> {
    let rig = Rig::start(setting).await?;
    for down in [
        Downstream::Http1,
        Downstream::H2c,
        Downstream::TlsH2,
        Downstream::TlsHttp1,
    ] {
        let what = || format!("{down:?} client, upstream.protocol {setting}");
        rig.download(setting, down)
            .await
            .with_context(|| format!("download: {}", what()))?;
        rig.upload(setting, down)
            .await
            .with_context(|| format!("upload: {}", what()))?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn upstream_http1_carries_bytes_unchanged() -> Result<()> {
    every_downstream("http1").await
}

#[tokio::test(flavor = "multi_thread")]
async fn upstream_http2_carries_bytes_unchanged() -> Result<()> {
    every_downstream("http2").await
}

#[tokio::test(flavor = "multi_thread")]
async fn upstream_auto_carries_bytes_unchanged() -> Result<()> {
    every_downstream("auto").await
}
