//! Token-bucket arithmetic and the bytes a bucket is stored as in shared data.
//!
//! Time is counted in epochs: epoch `n` starts at `n * refill_interval` since the Unix epoch, so
//! every instance of the plugin that reads the clock agrees on the current one. A bucket
//! remembers the epoch it was last refilled at and gets `refill_tokens` per epoch since then.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most tokens a bucket holds; also what a new bucket starts with.
    pub capacity: u64,
    /// Tokens added per elapsed epoch.
    pub refill_tokens: u64,
}

/// One key's bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    pub tokens: u64,
    /// The epoch the bucket was last refilled at.
    pub epoch: u64,
}

impl Bucket {
    /// Stored size: tokens then epoch, each a little-endian `u64`.
    pub const ENCODED_LEN: usize = 16;

    pub fn full(limits: &Limits, epoch: u64) -> Self {
        Self {
            tokens: limits.capacity,
            epoch,
        }
    }

    pub fn encode(&self) -> [u8; Self::ENCODED_LEN] {
        let mut out = [0; Self::ENCODED_LEN];
        out[..8].copy_from_slice(&self.tokens.to_le_bytes());
        out[8..].copy_from_slice(&self.epoch.to_le_bytes());
        out
    }

    /// `None` for anything that is not exactly 16 bytes (a fresh or foreign value).
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let (tokens, epoch) = bytes.split_at_checked(8)?;
        Some(Self {
            tokens: decode_u64(tokens)?,
            epoch: decode_u64(epoch)?,
        })
    }

    /// Refills for the epochs elapsed up to `epoch`, then takes one token if there is one.
    /// Returns the new state and whether the request may go on.
    pub fn take(self, epoch: u64, limits: &Limits) -> (Self, bool) {
        let elapsed = epoch.saturating_sub(self.epoch);
        let tokens = self
            .tokens
            .saturating_add(elapsed.saturating_mul(limits.refill_tokens))
            .min(limits.capacity);
        let epoch = epoch.max(self.epoch);
        match tokens.checked_sub(1) {
            Some(left) => (
                Self {
                    tokens: left,
                    epoch,
                },
                true,
            ),
            None => (Self { tokens, epoch }, false),
        }
    }
}

/// A little-endian `u64` of exactly 8 bytes (how the shared epoch is stored).
pub fn decode_u64(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.try_into().ok()?))
}

/// The epoch a clock reading (time since the Unix epoch) falls in.
pub fn epoch_at(since_unix_epoch: Duration, refill_interval: Duration) -> u64 {
    let interval = refill_interval.as_millis().max(1);
    u64::try_from(since_unix_epoch.as_millis() / interval).unwrap_or(u64::MAX)
}

/// `retry-after` seconds: the refill interval rounded up, at least 1.
pub fn retry_after_secs(refill_interval: Duration) -> u64 {
    refill_interval
        .as_millis()
        .div_ceil(1000)
        .max(1)
        .try_into()
        .unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        capacity: 3,
        refill_tokens: 2,
    };

    #[test]
    fn encoding_round_trips() {
        let b = Bucket {
            tokens: 7,
            epoch: 0x0102_0304_0506_0708,
        };
        let bytes = b.encode();
        assert_eq!(bytes[..8], [7, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(bytes[8..], [8, 7, 6, 5, 4, 3, 2, 1]);
        assert_eq!(Bucket::decode(&bytes), Some(b));
        assert_eq!(Bucket::decode(&bytes[..15]), None);
        assert_eq!(Bucket::decode(b""), None);
        assert_eq!(decode_u64(&[1, 0, 0, 0, 0, 0, 0, 0]), Some(1));
        assert_eq!(decode_u64(&[1]), None);
    }

    #[test]
    fn a_full_bucket_admits_capacity_requests_per_epoch() {
        let mut b = Bucket::full(&LIMITS, 10);
        let mut admitted = 0;
        for _ in 0..5 {
            let (next, ok) = b.take(10, &LIMITS);
            admitted += u32::from(ok);
            b = next;
        }
        assert_eq!(admitted, 3);
        assert_eq!(
            b,
            Bucket {
                tokens: 0,
                epoch: 10
            }
        );
    }

    #[test]
    fn refill_per_epoch_capped_at_capacity() {
        let empty = Bucket {
            tokens: 0,
            epoch: 10,
        };
        assert_eq!(
            empty.take(11, &LIMITS),
            (
                Bucket {
                    tokens: 1,
                    epoch: 11
                },
                true
            )
        );
        assert_eq!(
            empty.take(12, &LIMITS),
            (
                Bucket {
                    tokens: 2,
                    epoch: 12
                },
                true
            )
        );
        assert_eq!(empty.take(u64::MAX, &LIMITS).0.tokens, 2);
        // A refused request changes nothing.
        assert_eq!(empty.take(10, &LIMITS), (empty, false));
        // A capacity lowered by a new configuration applies at once.
        let over = Bucket {
            tokens: 50,
            epoch: 10,
        };
        assert_eq!(over.take(10, &LIMITS).0.tokens, 2);
        // An epoch older than the bucket's (clock skew) neither refills nor rewinds.
        assert_eq!(empty.take(3, &LIMITS), (empty, false));
    }

    #[test]
    fn epochs_and_retry_after() {
        let second = Duration::from_secs(1);
        assert_eq!(epoch_at(Duration::from_millis(2999), second), 2);
        assert_eq!(epoch_at(Duration::from_millis(3000), second), 3);
        assert_eq!(epoch_at(Duration::from_millis(3000), Duration::ZERO), 3000);
        assert_eq!(retry_after_secs(second), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1001)), 2);
        assert_eq!(retry_after_secs(Duration::from_millis(100)), 1);
        assert_eq!(retry_after_secs(Duration::from_secs(60)), 60);
    }
}
