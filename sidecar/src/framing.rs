//! Request framing on HTTP/1.1 connections, followed byte by byte as the client sends them.
//!
//! hyper resolves a request carrying both `Content-Length` and `Transfer-Encoding` the way RFC
//! 9112 §6.1 allows (chunked wins, the connection closes afterwards) and hides the
//! `Content-Length` it dropped. A proxy should refuse such a request outright, as Envoy does:
//! an upstream that frames it differently could be smuggled a second request. This tracker
//! reads the same bytes hyper reads, finds each request's header section, notes whether it is
//! ambiguous, and skips its body (by length or by chunks) to find the next one.
//!
//! When the stream stops looking like HTTP/1.1 (an HTTP/2 preface, an upgrade, a parse error
//! hyper will answer itself) the tracker steps aside and stops looking.

/// Where in the byte stream the tracker is.
#[derive(Debug)]
enum State {
    /// Collecting a request's header section.
    Head,
    /// Skipping this many body bytes.
    Fixed(u64),
    /// Reading a chunk-size line.
    ChunkSize,
    /// Skipping chunk data plus its CRLF.
    ChunkData(u64),
    /// Reading trailer lines after the last chunk, until an empty line.
    Trailers,
    /// No longer following the stream.
    Off,
}

/// Follows one connection's requests. Feed it every byte read from the client, in order.
#[derive(Debug)]
pub struct Tracker {
    state: State,
    /// Bytes of an unfinished header section or line, kept across reads.
    pending: Vec<u8>,
    max_head: usize,
    /// How many header sections were completed.
    heads: u64,
    /// The index of the first ambiguous request, if any.
    ambiguous: Option<u64>,
}

impl Tracker {
    pub fn new(max_head: usize) -> Self {
        Self {
            state: State::Head,
            pending: Vec::new(),
            max_head,
            heads: 0,
            ambiguous: None,
        }
    }

    /// Whether the `index`-th request (from 0) on this connection had ambiguous framing.
    pub fn is_ambiguous(&self, index: u64) -> bool {
        self.ambiguous == Some(index)
    }

    /// Whether any request on the connection was found ambiguous.
    pub fn flagged(&self) -> bool {
        self.ambiguous.is_some()
    }

    /// Whether the tracker still follows the stream.
    pub fn active(&self) -> bool {
        !matches!(self.state, State::Off)
    }

    /// Consumes bytes the client sent.
    pub fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            data = match self.state {
                State::Off => return,
                State::Head => self.head(data),
                State::Fixed(n) => {
                    let take = n.min(data.len() as u64);
                    self.state = if take == n {
                        State::Head
                    } else {
                        State::Fixed(n - take)
                    };
                    &data[take as usize..]
                }
                State::ChunkData(n) => {
                    let take = n.min(data.len() as u64);
                    self.state = if take == n {
                        State::ChunkSize
                    } else {
                        State::ChunkData(n - take)
                    };
                    &data[take as usize..]
                }
                State::ChunkSize => self.line(data, Self::chunk_size),
                State::Trailers => self.line(data, Self::trailer),
            };
        }
    }

    /// Accumulates a header section; returns the bytes after it.
    fn head<'a>(&mut self, data: &'a [u8]) -> &'a [u8] {
        // Fast path: the whole section is in this read.
        if self.pending.is_empty()
            && let Some(end) = find_head_end(data)
        {
            self.parse_head(&data[..end]);
            return &data[end..];
        }
        let before = self.pending.len();
        self.pending.extend_from_slice(data);
        // The terminator may straddle reads: search from a little before the new bytes.
        let from = before.saturating_sub(3);
        match find_head_end(&self.pending[from..]) {
            Some(end) => {
                let end = from + end;
                let head = std::mem::take(&mut self.pending);
                self.parse_head(&head[..end]);
                &data[end - before..]
            }
            None => {
                if self.pending.len() > self.max_head {
                    self.off();
                }
                &[]
            }
        }
    }

    fn parse_head(&mut self, head: &[u8]) {
        // Leading empty lines before a request line are allowed (RFC 9112 §2.2).
        let mut headers = [httparse::EMPTY_HEADER; 128];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(head) {
            Ok(httparse::Status::Complete(_)) => {}
            _ => return self.off(),
        }
        let index = self.heads;
        self.heads += 1;
        if matches!(req.method, Some("PRI" | "CONNECT")) {
            return self.off();
        }
        let mut length: Option<u64> = None;
        let mut chunked = false;
        let mut has_te = false;
        let mut upgrade = false;
        for h in req.headers.iter() {
            if h.name.eq_ignore_ascii_case("content-length") {
                match std::str::from_utf8(h.value)
                    .ok()
                    .and_then(|v| v.trim().parse().ok())
                {
                    Some(n) => length = Some(n),
                    None => return self.off(),
                }
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                has_te = true;
                chunked = h
                    .value
                    .rsplit(|b| *b == b',')
                    .next()
                    .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
            } else if h.name.eq_ignore_ascii_case("upgrade") {
                upgrade = true;
            }
        }
        if has_te && length.is_some() && self.ambiguous.is_none() {
            self.ambiguous = Some(index);
        }
        self.state = if upgrade {
            // Whatever follows may be another protocol.
            State::Off
        } else if has_te {
            if chunked {
                State::ChunkSize
            } else {
                State::Off
            }
        } else {
            match length {
                Some(0) | None => State::Head,
                Some(n) => State::Fixed(n),
            }
        };
    }

    /// Accumulates one CRLF-terminated line and hands it to `on_line`.
    fn line<'a>(&mut self, data: &'a [u8], on_line: fn(&mut Self, &[u8])) -> &'a [u8] {
        match data.iter().position(|b| *b == b'\n') {
            Some(i) => {
                if self.pending.is_empty() {
                    on_line(self, &data[..i]);
                } else {
                    self.pending.extend_from_slice(&data[..i]);
                    let line = std::mem::take(&mut self.pending);
                    on_line(self, &line);
                }
                &data[i + 1..]
            }
            None => {
                self.pending.extend_from_slice(data);
                if self.pending.len() > self.max_head {
                    self.off();
                }
                &[]
            }
        }
    }

    fn chunk_size(&mut self, line: &[u8]) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let digits = line.split(|b| *b == b';').next().unwrap_or_default();
        let size = std::str::from_utf8(digits.trim_ascii())
            .ok()
            .and_then(|s| u64::from_str_radix(s, 16).ok());
        self.state = match size {
            Some(0) => State::Trailers,
            Some(n) => State::ChunkData(n + 2),
            None => State::Off,
        };
    }

    fn trailer(&mut self, line: &[u8]) {
        if line.is_empty() || line == b"\r" {
            self.state = State::Head;
        }
    }

    fn off(&mut self) {
        self.state = State::Off;
        self.pending = Vec::new();
    }
}

/// The end (exclusive) of the first header section in `data`, after its blank line (CRLF or,
/// as httparse also accepts, a bare LF).
fn find_head_end(data: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(p) = data[i..].iter().position(|b| *b == b'\n') {
        let at = i + p + 1;
        match &data[at..] {
            [b'\n', ..] => return Some(at + 1),
            [b'\r', b'\n', ..] => return Some(at + 2),
            _ => i = at,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_split(input: &[u8], step: usize) -> Tracker {
        let mut t = Tracker::new(8192);
        for chunk in input.chunks(step) {
            t.feed(chunk);
        }
        t
    }

    #[test]
    fn flags_the_request_with_both_lengths_whatever_the_read_sizes() {
        let input = b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;ext\r\nhello\r\n0\r\nx-t: 1\r\n\r\nPOST /c HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n";
        for step in [1, 2, 3, 7, 64, input.len()] {
            let t = feed_split(input, step);
            assert!(!t.is_ambiguous(0) && !t.is_ambiguous(1), "step {step}");
            assert!(t.is_ambiguous(2), "step {step}");
        }
    }

    #[test]
    fn bare_line_feeds_do_not_hide_a_request() {
        let t = feed_split(
            b"POST / HTTP/1.1\nContent-Length: 3\nTransfer-Encoding: chunked\n\n",
            3,
        );
        assert!(t.is_ambiguous(0));
    }

    #[test]
    fn steps_aside_for_http2_and_upgrades() {
        let t = feed_split(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 5);
        assert!(!t.active());
        let t = feed_split(
            b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
            9,
        );
        assert!(!t.active());
    }

    #[test]
    fn steps_aside_on_garbage_and_huge_heads() {
        let t = feed_split(b"GET / HTTP/1.1\r\nContent-Length: zz\r\n\r\n", 4);
        assert!(!t.active());
        let mut t = Tracker::new(64);
        t.feed(&[b'a'; 100]);
        assert!(!t.active());
    }
}
