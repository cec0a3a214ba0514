//! The header-map ("pairs") serialization: a u32 count, then every (key length, value length)
//! as u32 pairs, then every key and value each followed by a NUL. All little-endian.

/// Most pairs accepted from a guest, and most bytes: a malformed map is refused, not trusted.
const MAX_PAIRS: usize = 1024;
const MAX_BYTES: usize = 1 << 20;

/// Serializes pairs. An empty map is an empty buffer.
pub fn encode<'a, I>(pairs: I) -> Vec<u8>
where
    I: IntoIterator<Item = (&'a [u8], &'a [u8])> + Clone,
{
    let mut out = Vec::new();
    encode_into(&mut out, move || pairs.clone());
    out
}

/// Serializes into `out` (cleared first) the pairs `pairs()` yields; it is called twice, to
/// size the buffer and then to fill it, and must yield the same pairs both times.
pub fn encode_into<'a, I>(out: &mut Vec<u8>, pairs: impl Fn() -> I)
where
    I: IntoIterator<Item = (&'a [u8], &'a [u8])>,
{
    out.clear();
    let (count, size) = pairs()
        .into_iter()
        .fold((0usize, 4usize), |(n, size), (k, v)| {
            (n + 1, size + 8 + k.len() + v.len() + 2)
        });
    if count == 0 {
        return;
    }
    // The lengths go first and the bytes after them: write both in one pass.
    out.resize(4 + 8 * count, 0);
    out.reserve(size - out.len());
    out[..4].copy_from_slice(&(count as u32).to_le_bytes());
    for (i, (k, v)) in pairs().into_iter().take(count).enumerate() {
        let at = 4 + 8 * i;
        out[at..at + 4].copy_from_slice(&(k.len() as u32).to_le_bytes());
        out[at + 4..at + 8].copy_from_slice(&(v.len() as u32).to_le_bytes());
        out.extend_from_slice(k);
        out.push(0);
        out.extend_from_slice(v);
        out.push(0);
    }
}

/// Parses pairs, borrowing from `buf`. Accepts the empty encodings (no bytes, one NUL byte, a
/// zero count); `None` for anything malformed: lengths past the buffer, missing NULs, trailing
/// bytes, too many pairs.
pub fn decode(buf: &[u8]) -> Option<Vec<(&[u8], &[u8])>> {
    if buf.is_empty() || buf == [0] {
        return Some(Vec::new());
    }
    if buf.len() > MAX_BYTES {
        return None;
    }
    let u32_at = |at: usize| -> Option<usize> {
        let b = buf.get(at..at + 4)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    let count = u32_at(0)?;
    if count > MAX_PAIRS {
        return None;
    }
    let mut at = 4 + count * 8;
    let mut take = |len: usize| -> Option<&[u8]> {
        let end = at.checked_add(len)?;
        let bytes = buf.get(at..end)?;
        if *buf.get(end)? != 0 {
            return None;
        }
        at = end + 1;
        Some(bytes)
    };
    let mut pairs = Vec::with_capacity(count);
    for i in 0..count {
        let (kl, vl) = (u32_at(4 + i * 8)?, u32_at(8 + i * 8)?);
        let k = take(kl)?;
        let v = take(vl)?;
        pairs.push((k, v));
    }
    (at == buf.len()).then_some(pairs)
}

/// [`decode`], copying the pairs out.
pub fn decode_owned(buf: &[u8]) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
    let pairs = decode(buf)?;
    Some(
        pairs
            .into_iter()
            .map(|(k, v)| (k.to_vec(), v.to_vec()))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_the_documented_example() {
        let out = encode([(&b"a"[..], &b"1"[..]), (&b"b"[..], &b"22"[..])]);
        let want: &[u8] = &[
            2, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, b'a', 0, b'1', 0, b'b', 0,
            b'2', b'2', 0,
        ];
        assert_eq!(out, want);
        assert_eq!(
            decode(&out),
            Some(vec![(&b"a"[..], &b"1"[..]), (&b"b"[..], &b"22"[..])])
        );
    }

    #[test]
    fn encoding_into_a_used_buffer_replaces_its_content() {
        let pairs = [(&b"key"[..], &b"value"[..]), (&b"k2"[..], &b""[..])];
        let mut out = b"left over".to_vec();
        encode_into(&mut out, || pairs);
        assert_eq!(out, encode(pairs));
        assert_eq!(decode(&out), Some(pairs.to_vec()));
        encode_into(&mut out, std::iter::empty::<(&[u8], &[u8])>);
        assert!(out.is_empty());
    }

    #[test]
    fn empty_maps_in_every_spelling() {
        assert!(encode(std::iter::empty::<(&[u8], &[u8])>()).is_empty());
        for empty in [&[][..], &[0][..], &[0, 0, 0, 0][..]] {
            assert_eq!(decode(empty), Some(vec![]));
        }
    }

    #[test]
    fn malformed_maps_are_refused() {
        let good = encode([(&b"k"[..], &b"v"[..])]);
        let mut missing_nul = good.clone();
        let last = missing_nul.len() - 1;
        missing_nul[last] = b'x';
        let mut trailing = good.clone();
        trailing.push(0);
        let mut huge_len = good.clone();
        huge_len[4] = 0xff;
        for bad in [
            &good[..good.len() - 1],
            &missing_nul,
            &trailing,
            &huge_len,
            &[9, 9, 9, 9][..],
        ] {
            assert_eq!(decode(bad), None, "{bad:?}");
        }
    }
}
