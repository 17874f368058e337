//! An append-only, most-significant-bit-first bit buffer for building the data codewords.

/// Bits packed into bytes, most significant bit first, as QR codewords are.
#[derive(Clone, Debug, Default)]
pub(crate) struct BitBuffer {
    bytes: Vec<u8>,
    /// Bits held back until they fill a byte.
    acc: u64,
    pending: u32,
}

impl BitBuffer {
    pub(crate) fn with_capacity(bits: usize) -> Self {
        BitBuffer {
            bytes: Vec::with_capacity(bits.div_ceil(8) + 8),
            acc: 0,
            pending: 0,
        }
    }

    /// Number of bits written.
    pub(crate) fn len(&self) -> usize {
        self.bytes.len() * 8 + self.pending as usize
    }

    /// Appends the low `n` bits of `value`, most significant first. `n` is at most 32.
    #[inline]
    pub(crate) fn push(&mut self, value: u32, n: u32) {
        debug_assert!(n <= 32 && (n == 32 || value >> n == 0));
        self.acc = (self.acc << n) | value as u64;
        self.pending += n;
        while self.pending >= 8 {
            self.pending -= 8;
            self.bytes.push((self.acc >> self.pending) as u8);
        }
    }

    /// Appends whole bytes.
    #[inline]
    pub(crate) fn push_bytes(&mut self, data: &[u8]) {
        if self.pending == 0 {
            self.bytes.extend_from_slice(data);
        } else {
            for &b in data {
                self.push(b as u32, 8);
            }
        }
    }

    /// The bytes, with any partial last byte padded by zero bits.
    pub(crate) fn into_bytes(mut self) -> Vec<u8> {
        if self.pending > 0 {
            let pad = 8 - self.pending;
            self.push(0, pad);
        }
        self.bytes
    }
}
