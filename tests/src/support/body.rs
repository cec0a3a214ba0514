//! The one body type the test servers and clients use, and constructors for it.

use std::convert::Infallible;

use bytes::Bytes;
use futures_util::stream::Stream;
use http::HeaderMap;
use http_body::Frame;
use http_body_util::{BodyExt, Empty, Full, StreamBody, combinators::BoxBody};

/// Error type carried by [`Body`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A boxed, streaming HTTP body.
pub type Body = BoxBody<Bytes, BoxError>;

/// An empty body.
pub fn empty() -> Body {
    Empty::<Bytes>::new().map_err(never).boxed()
}

/// A body holding `bytes` in one frame.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).map_err(never).boxed()
}

/// A body made of the frames a stream yields.
pub fn from_frames<S>(frames: S) -> Body
where
    S: Stream<Item = Result<Frame<Bytes>, BoxError>> + Send + Sync + 'static,
{
    BodyExt::boxed(StreamBody::new(frames))
}

/// A body of `data` followed by `trailers`.
pub fn with_trailers(data: Bytes, trailers: HeaderMap) -> Body {
    let frames = vec![Ok(Frame::data(data)), Ok(Frame::trailers(trailers))];
    from_frames(futures_util::stream::iter(frames))
}

fn never(never: Infallible) -> BoxError {
    match never {}
}
