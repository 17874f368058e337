//! Greedy LZ77 match search over hash chains, for the scanlines of the small-palette writer
//! (styled codes, the live frames). The symbol writer does not need it: its scanlines are
//! module runs it already knows. A scanline of a styled code at several pixels per module
//! is made of a few byte patterns (the module boundaries fall at fixed bit offsets), so
//! most of it is found a little earlier in the same or a previous scanline.

use super::deflate::{MAX_DISTANCE, MAX_MATCH};

/// Shortest match taken: a 4-byte match (at most 31 bits) never costs more than the four
/// literals it replaces (at least 32 bits), so the writer's size bound holds.
pub(crate) const MIN_LEN: usize = 4;
const HASH_BITS: u32 = 14;
const NONE: u32 = u32::MAX;
/// Candidates tried per position.
const DEPTH: usize = 24;

/// Positions of `data` by the hash of the 3 bytes they start.
pub(crate) struct Matcher {
    head: Vec<u32>,
    prev: Vec<u32>,
}

fn hash(data: &[u8], pos: usize) -> usize {
    let v = u32::from(data[pos]) | u32::from(data[pos + 1]) << 8 | u32::from(data[pos + 2]) << 16;
    (v.wrapping_mul(0x9E37_79B1) >> (32 - HASH_BITS)) as usize
}

impl Matcher {
    /// For a stream of `len` bytes.
    pub(crate) fn new(len: usize) -> Matcher {
        Matcher {
            head: vec![NONE; 1 << HASH_BITS],
            prev: vec![NONE; len],
        }
    }

    /// Makes `data[pos..]` a candidate for later positions. Positions go in increasing
    /// order.
    #[inline]
    pub(crate) fn insert(&mut self, data: &[u8], pos: usize) {
        if pos + 3 > data.len() {
            return;
        }
        let h = hash(data, pos);
        self.prev[pos] = self.head[h];
        self.head[h] = pos as u32;
    }

    /// The longest earlier match of `data[pos..end]`, as (length, distance), when at least
    /// [`MIN_LEN`] long.
    pub(crate) fn longest(&self, data: &[u8], pos: usize, end: usize) -> Option<(usize, usize)> {
        let max = (end - pos).min(MAX_MATCH);
        if max < MIN_LEN || pos + 3 > data.len() {
            return None;
        }
        let mut cand = self.head[hash(data, pos)];
        let mut best = (0, 0);
        let mut tries = DEPTH;
        while cand != NONE && tries > 0 {
            let c = cand as usize;
            if pos - c > MAX_DISTANCE {
                break;
            }
            // Overlapping matches are allowed: the decoder copies byte by byte.
            let len = data[c..c + max]
                .iter()
                .zip(&data[pos..pos + max])
                .take_while(|(a, b)| a == b)
                .count();
            if len > best.0 {
                best = (len, pos - c);
                if len == max {
                    break;
                }
            }
            cand = self.prev[c];
            tries -= 1;
        }
        (best.0 >= MIN_LEN).then_some(best)
    }
}
