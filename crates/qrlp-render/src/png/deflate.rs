//! A minimal DEFLATE (RFC 1951) writer: one fixed-Huffman block (BTYPE = 01), literals and
//! matches only, no searching. The caller knows where the repeats are.

/// Reverses the low `len` bits of `code`: Huffman codes go into the stream most significant
/// bit first, while the bit writer fills bytes from the least significant bit.
const fn reverse(code: u32, len: u32) -> u32 {
    let mut r = 0;
    let mut i = 0;
    while i < len {
        r = (r << 1) | ((code >> i) & 1);
        i += 1;
    }
    r
}

/// Fixed-Huffman code of a literal/length symbol 0..=287, as (bit-reversed code, length).
const fn fixed_code(sym: u32) -> (u32, u32) {
    let (code, len) = match sym {
        0..=143 => (0x30 + sym, 8),
        144..=255 => (0x190 + sym - 144, 9),
        256..=279 => (sym - 256, 7),
        _ => (0xC0 + sym - 280, 8),
    };
    (reverse(code, len), len)
}

/// Packs bits and their count: bits in the low 24, count in the high 8.
const fn pack(bits: u32, len: u32) -> u32 {
    (len << 24) | bits
}

/// Literal byte → packed code.
static LITERALS: [u32; 256] = {
    let mut t = [0; 256];
    let mut i = 0;
    while i < 256 {
        let (c, l) = fixed_code(i as u32);
        t[i] = pack(c, l);
        i += 1;
    }
    t
};

const LEN_BASE: [u32; 29] = [
    3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131,
    163, 195, 227, 258,
];
const LEN_EXTRA: [u32; 29] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
];
const DIST_BASE: [u32; 30] = [
    1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537,
    2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577,
];
const DIST_EXTRA: [u32; 30] = [
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13,
    13,
];

/// Match length 3..=258 → packed length symbol code followed by its extra bits.
static LENGTHS: [u32; 259] = {
    let mut t = [0; 259];
    let mut sym = 0;
    while sym < 29 {
        let mut extra = 0;
        while extra < (1 << LEN_EXTRA[sym]) {
            let len = LEN_BASE[sym] + extra;
            // Length 258 has its own symbol; 227 + 31 would alias it.
            if len <= 258 && !(len == 258 && sym != 28) {
                let (c, l) = fixed_code(257 + sym as u32);
                t[len as usize] = pack(c | (extra << l), l + LEN_EXTRA[sym]);
            }
            extra += 1;
        }
        sym += 1;
    }
    t
};

/// A run of equal bytes in a scanline: `len` bytes from offset `start`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ByteRun {
    /// Offset of the first byte.
    pub(crate) start: u32,
    /// Number of bytes, at least [`ByteRun::MIN`].
    pub(crate) len: u32,
}

impl ByteRun {
    /// The shortest run worth a copy: a literal then a copy of the minimum length 3.
    pub(crate) const MIN: u32 = 4;
}

/// Calls `f` with the length of each match of a copy of `total ≥ 3` bytes: at most 258
/// bytes, none shorter than 3.
#[inline(always)]
fn for_each_match(mut total: usize, mut f: impl FnMut(usize)) {
    while total > MAX_MATCH {
        // Never leave a tail of 1 or 2 bytes.
        let len = if total < MAX_MATCH + MIN_MATCH {
            total - MIN_MATCH
        } else {
            MAX_MATCH
        };
        f(len);
        total -= len;
    }
    f(total);
}

/// The codes of the last copy written by [`BitWriter::copy_cached`]: (bits, length) pairs of
/// at most 56 bits.
#[derive(Debug, Default)]
pub(crate) struct CopyCodes {
    total: usize,
    dist: u32,
    codes: Vec<(u64, u32)>,
}

/// Runs of at least [`ByteRun::MIN`] equal bytes in `line`, in order.
pub(crate) fn find_runs(line: &[u8], runs: &mut Vec<ByteRun>) {
    runs.clear();
    let mut i = 0;
    while i < line.len() {
        let mut j = i + 1;
        while j < line.len() && line[j] == line[i] {
            j += 1;
        }
        if j - i >= ByteRun::MIN as usize {
            runs.push(ByteRun {
                start: i as u32,
                len: (j - i) as u32,
            });
        }
        i = j;
    }
}

/// The longest match DEFLATE allows.
pub(crate) const MAX_MATCH: usize = 258;
/// The shortest match DEFLATE allows.
pub(crate) const MIN_MATCH: usize = 3;
/// The farthest back a match may reach.
pub(crate) const MAX_DISTANCE: usize = 32768;

/// A distance's code and extra bits, packed; computed once per image.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Distance(u32);

impl Distance {
    /// `dist` must be in 1..=32768.
    pub(crate) fn new(dist: usize) -> Distance {
        debug_assert!((1..=MAX_DISTANCE).contains(&dist));
        let dist = dist as u32;
        let mut code = 0;
        while code + 1 < DIST_BASE.len() && DIST_BASE[code + 1] <= dist {
            code += 1;
        }
        // Distance codes are all 5 bits long in the fixed code.
        let c = reverse(code as u32, 5);
        Distance(pack(
            c | ((dist - DIST_BASE[code]) << 5),
            5 + DIST_EXTRA[code],
        ))
    }
}

/// Bytes by which [`BitWriter`] lengthens its vector (within the reserved capacity).
const GROW: usize = 256;

/// Writes bits least significant first into a byte vector.
///
/// Branch-free in the common case: the vector's capacity is reserved once for an upper bound
/// of the output, its length kept a little ahead of the writing position, every `put`
/// stores the whole 64-bit accumulator at the current byte and then advances past the
/// completed bytes, and `finish` cuts the vector back.
pub(crate) struct BitWriter<'a> {
    out: &'a mut Vec<u8>,
    /// Next byte to complete.
    pos: usize,
    /// Bits not yet complete, fewer than 8 between calls.
    acc: u64,
    nbits: u32,
}

impl<'a> BitWriter<'a> {
    /// Starts writing at the end of `out`, expecting at most `capacity` bytes (more is
    /// allowed, just slower).
    pub(crate) fn new(out: &'a mut Vec<u8>, capacity: usize) -> Self {
        let pos = out.len();
        out.reserve(capacity.saturating_add(8));
        out.resize(pos + GROW, 0);
        BitWriter {
            out,
            pos,
            acc: 0,
            nbits: 0,
        }
    }

    /// Appends the low `len` bits of `bits` (`len ≤ 32`, higher bits zero).
    #[inline(always)]
    fn put(&mut self, bits: u32, len: u32) {
        // nbits < 8 before, so at most 39 bits are pending here.
        self.acc |= u64::from(bits) << self.nbits;
        self.nbits += len;
        if self.pos + 8 > self.out.len() {
            self.grow();
        }
        self.out[self.pos..self.pos + 8].copy_from_slice(&self.acc.to_le_bytes());
        let bytes = self.nbits / 8;
        self.pos += bytes as usize;
        self.acc >>= bytes * 8;
        self.nbits -= bytes * 8;
    }

    /// Appends the low `len` bits of `bits` (`len ≤ 56`, higher bits zero).
    #[inline(always)]
    fn put_wide(&mut self, bits: u64, len: u32) {
        // nbits < 8 before, so at most 63 bits are pending here.
        self.acc |= bits << self.nbits;
        self.nbits += len;
        if self.pos + 8 > self.out.len() {
            self.grow();
        }
        self.out[self.pos..self.pos + 8].copy_from_slice(&self.acc.to_le_bytes());
        let bytes = self.nbits / 8;
        self.pos += bytes as usize;
        self.acc >>= bytes * 8;
        self.nbits -= bytes * 8;
    }

    #[cold]
    #[inline(never)]
    fn grow(&mut self) {
        // The capacity is reserved up front; the length grows a little at a time so that
        // only what is written is ever zeroed.
        let len = self.out.len();
        self.out.resize(len + GROW, 0);
    }

    #[inline(always)]
    fn put_packed(&mut self, packed: u32) {
        self.put(packed & 0x00ff_ffff, packed >> 24);
    }

    /// Starts the one and final fixed-Huffman block.
    pub(crate) fn begin_fixed_block(&mut self) {
        // BFINAL = 1, BTYPE = 01 (LSB first).
        self.put(0b011, 3);
    }

    /// Starts a fixed-Huffman block that is not the last one.
    pub(crate) fn begin_open_fixed_block(&mut self) {
        // BFINAL = 0, BTYPE = 01 (LSB first).
        self.put(0b010, 3);
    }

    /// Ends the current fixed-Huffman block, writes `data` as a stored block (not the last
    /// one; `data.len() ≤ 65535`) and starts another fixed-Huffman block that is not the last
    /// one. Stored bytes cost 8 bits each plus about 5 bytes per block, against 8 or 9 bits
    /// for a fixed-Huffman literal, and are copied rather than coded one by one.
    pub(crate) fn stored(&mut self, data: &[u8]) {
        debug_assert!(data.len() <= usize::from(u16::MAX));
        let (c, l) = fixed_code(256);
        // End of block, then BFINAL = 0, BTYPE = 00; at most 7 + 7 + 3 = 17 bits pending.
        self.put(c, l);
        self.put(0b000, 3);
        // A stored block starts at the next byte boundary; `put` has already written the
        // partial byte.
        self.pos += usize::from(self.nbits > 0);
        self.acc = 0;
        self.nbits = 0;
        let len = data.len() as u16;
        let need = self.pos + 4 + data.len() + 8;
        if need > self.out.len() {
            self.out.resize(need + GROW, 0);
        }
        self.out[self.pos..self.pos + 2].copy_from_slice(&len.to_le_bytes());
        self.out[self.pos + 2..self.pos + 4].copy_from_slice(&(!len).to_le_bytes());
        self.pos += 4;
        self.out[self.pos..self.pos + data.len()].copy_from_slice(data);
        self.pos += data.len();
        self.begin_open_fixed_block();
    }

    /// Ends the current fixed-Huffman block and adds an empty final one, then pads to a byte
    /// boundary, for a stream begun with [`BitWriter::begin_open_fixed_block`].
    pub(crate) fn finish_open(mut self) {
        let (c, l) = fixed_code(256);
        self.put(c, l);
        self.begin_fixed_block();
        self.finish();
    }

    /// Ends the block with the end-of-block symbol and pads to a byte boundary.
    pub(crate) fn finish(mut self) {
        let (c, l) = fixed_code(256);
        self.put(c, l);
        // The partial last byte is already stored by `put`.
        let end = self.pos + usize::from(self.nbits > 0);
        self.out.truncate(end);
    }

    /// One literal byte.
    #[inline(always)]
    pub(crate) fn literal(&mut self, byte: u8) {
        self.put_packed(LITERALS[usize::from(byte)]);
    }

    /// One match; `len` in 3..=258.
    #[inline(always)]
    fn one_match(&mut self, len: usize, dist: Distance) {
        let l = LENGTHS[len];
        let lbits = l >> 24;
        // At most 13 + 18 = 31 bits together.
        self.put(
            (l & 0x00ff_ffff) | ((dist.0 & 0x00ff_ffff) << lbits),
            lbits + (dist.0 >> 24),
        );
    }

    /// One match of `len` in 3..=258 bytes, `dist` back.
    #[inline]
    pub(crate) fn matched(&mut self, len: usize, dist: Distance) {
        self.one_match(len, dist);
    }

    /// Copies `total ≥ 3` bytes from `dist` back, as matches of at most 258 bytes, none shorter
    /// than 3.
    #[inline]
    pub(crate) fn copy(&mut self, total: usize, dist: Distance) {
        debug_assert!(total >= MIN_MATCH);
        for_each_match(total, |len| self.one_match(len, dist));
    }

    /// Like [`BitWriter::copy`], with the codes kept in `cache` for the next copy of the same
    /// length and distance (every module row of an image repeats its scanline as often).
    #[inline]
    pub(crate) fn copy_cached(&mut self, total: usize, dist: Distance, cache: &mut CopyCodes) {
        debug_assert!(total >= MIN_MATCH);
        if cache.total != total || cache.dist != dist.0 {
            cache.total = total;
            cache.dist = dist.0;
            cache.codes.clear();
            let (mut bits, mut len) = (0u64, 0u32);
            for_each_match(total, |n| {
                let l = LENGTHS[n];
                let lbits = l >> 24;
                let code = u64::from(l & 0x00ff_ffff) | u64::from(dist.0 & 0x00ff_ffff) << lbits;
                let code_len = lbits + (dist.0 >> 24);
                // Up to 56 bits a store.
                if len + code_len > 56 {
                    cache.codes.push((bits, len));
                    (bits, len) = (0, 0);
                }
                bits |= code << len;
                len += code_len;
            });
            cache.codes.push((bits, len));
        }
        for &(bits, len) in &cache.codes {
            self.put_wide(bits, len);
        }
    }

    /// Writes `buf[..len]`, with each of the given runs of equal bytes (in order, not
    /// overlapping) as a literal and a distance-1 copy, and everything else as literals.
    /// Bytes of `buf` past `len` are never written out; when there are at least two, the
    /// last literals of each stretch are read without branching.
    #[inline]
    pub(crate) fn literals_with_runs(&mut self, buf: &[u8], len: usize, runs: &[ByteRun]) {
        self.literals_with_runs_from(buf, 0, len, runs);
    }

    /// Like [`BitWriter::literals_with_runs`] for `buf[from..len]`.
    #[inline]
    pub(crate) fn literals_with_runs_from(
        &mut self,
        buf: &[u8],
        from: usize,
        len: usize,
        runs: &[ByteRun],
    ) {
        let one = Distance(pack(0, 5));
        let mut start = from;
        for run in runs {
            let (s, n) = (run.start as usize, run.len as usize);
            debug_assert!(n >= ByteRun::MIN as usize && s >= start && s + n <= len);
            debug_assert!(buf[s..s + n].iter().all(|&b| b == buf[s]));
            self.literals(buf, start, s + 1);
            self.copy(n - 1, one);
            start = s + n;
        }
        self.literals(buf, start, len);
    }

    /// Writes `buf[from..to]` as literals, six codes (at most 54 bits) per store.
    #[inline]
    fn literals(&mut self, buf: &[u8], from: usize, to: usize) {
        let mut at = from;
        while at + 6 <= to {
            let mut bits = 0u64;
            let mut len = 0;
            for &b in &buf[at..at + 6] {
                let code = LITERALS[usize::from(b)];
                bits |= u64::from(code & 0x00ff_ffff) << len;
                len += code >> 24;
            }
            self.put_wide(bits, len);
            at += 6;
        }
        if at < to {
            let mut bits = 0u64;
            let mut len = 0;
            for &b in &buf[at..to] {
                let code = LITERALS[usize::from(b)];
                bits |= u64::from(code & 0x00ff_ffff) << len;
                len += code >> 24;
            }
            self.put_wide(bits, len);
        }
    }
}

/// Upper bound on the bytes [`BitWriter`] writes for `literal_bytes` bytes through
/// [`BitWriter::literals_with_runs`] and `copied` bytes through [`BitWriter::copy`] in `copies`
/// calls: 9 bits per literal at most (a run's copy is never longer than the literals it
/// replaces), 31 bits per match.
pub(crate) fn bound(literal_bytes: usize, copied: usize, copies: usize) -> usize {
    let matches = copied / MAX_MATCH + 2 * copies;
    (literal_bytes.saturating_mul(9) + matches.saturating_mul(31) + 3 + 7).div_ceil(8) + 8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_codes_match_rfc_1951_examples() {
        // 'A' = 65 → 0x30 + 65 = 0x71 (8 bits, MSB first).
        assert_eq!(fixed_code(65), (reverse(0x71, 8), 8));
        assert_eq!(fixed_code(144), (reverse(0x190, 9), 9));
        assert_eq!(fixed_code(256), (0, 7));
        assert_eq!(fixed_code(287), (reverse(0xC7, 8), 8));
    }

    #[test]
    fn every_length_has_a_code() {
        for (len, code) in LENGTHS.iter().enumerate().skip(3) {
            assert_ne!(code >> 24, 0, "length {len}");
        }
        // 258 uses symbol 285, no extra bits.
        assert_eq!(LENGTHS[258], pack(fixed_code(285).0, 8));
        // 11 = symbol 265 (base 11, 1 extra bit 0); 12 = same symbol, extra 1.
        assert_eq!(LENGTHS[12], pack(fixed_code(265).0 | (1 << 7), 8));
    }

    #[test]
    fn writer_grows_past_a_wrong_bound() {
        let data: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut small = vec![9u8];
        let mut w = BitWriter::new(&mut small, 0);
        w.begin_fixed_block();
        w.literals_with_runs(&data, data.len(), &[]);
        w.finish();
        let mut big = vec![9u8];
        let mut w = BitWriter::new(&mut big, bound(data.len(), 0, 0));
        w.begin_fixed_block();
        w.literals_with_runs(&data, data.len(), &[]);
        w.finish();
        assert_eq!(small, big);
        assert!(big.len() > 5000);
    }

    #[test]
    fn distances() {
        assert_eq!(Distance::new(1).0, pack(0, 5));
        let d = Distance::new(4097);
        assert_eq!(d.0 >> 24, 5 + 11);
        let d = Distance::new(32768);
        assert_eq!(d.0 >> 24, 5 + 13);
        assert_eq!(d.0 & 0xffffff, reverse(29, 5) | ((32768 - 24577) << 5));
    }
}
