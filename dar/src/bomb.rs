//! A real zip bomb made cheaply: a raw deflate stream that inflates to a
//! chosen number of zero bytes, written by hand instead of compressing them.
//!
//! One dynamic-Huffman block whose literal/length code gives "length 258" a
//! 1-bit code and whose distance code has the single 1-bit code "distance 1":
//! every 2 bits of output then inflate to 258 zeros (about 1 MiB of stream per
//! GiB). The CRC-32 of n zero bytes is computed in O(log n) with GF(2)
//! polynomial arithmetic (as zlib's `crc32_combine`), so building a 1 GiB bomb
//! touches only the 1 MiB it writes.

/// Bytes produced by one length/distance pair.
const RUN: u64 = 258;

/// A deflate stream of zeros: (stream, inflated size, CRC-32 of the output).
/// The inflated size is the smallest `1 + 258·k` that is at least `min_size`.
pub(crate) fn deflate_zeros(min_size: u64) -> (Vec<u8>, u64, u32) {
    let runs = min_size.saturating_sub(1).div_ceil(RUN);
    let size = 1 + runs * RUN;
    let mut w = BitWriter::default();
    w.bits(1, 1); // BFINAL
    w.bits(2, 2); // BTYPE = dynamic Huffman
    w.bits(29, 5); // HLIT: 286 literal/length codes
    w.bits(0, 5); // HDIST: 1 distance code
    w.bits(14, 4); // HCLEN: 18 code-length code lengths
    // Code-length alphabet: symbol 18 (run of zeros) = "0", 1 = "10", 2 = "11".
    const ORDER: [usize; 18] = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1];
    for sym in ORDER {
        let len = match sym {
            18 => 1,
            1 | 2 => 2,
            _ => 0,
        };
        w.bits(len, 3);
    }
    let zeros = |w: &mut BitWriter, n: u64| {
        w.code(0b0, 1);
        w.bits(n - 11, 7);
    };
    // Literal/length lengths: symbol 0 → 2, 1..=255 → 0, 256 → 2,
    // 257..=284 → 0, 285 (length 258) → 1. Distance: symbol 0 → 1.
    w.code(0b11, 2);
    zeros(&mut w, 138);
    zeros(&mut w, 117);
    w.code(0b11, 2);
    zeros(&mut w, 28);
    w.code(0b10, 2);
    w.code(0b10, 2);
    // Resulting codes: 285 = "0", literal 0 = "10", end of block 256 = "11";
    // distance 1 = "0".
    w.code(0b10, 2); // one literal zero to copy from
    w.zero_bits(runs * 2); // each run: length 258 "0", distance 1 "0"
    w.code(0b11, 2); // end of block
    (w.finish(), size, crc32_of_zeros(size))
}

/// Deflate writes bit fields least-significant bit first, and Huffman codes
/// most-significant bit first.
#[derive(Default)]
struct BitWriter {
    out: Vec<u8>,
    acc: u64,
    n: u32,
}

impl BitWriter {
    fn bits(&mut self, value: u64, count: u32) {
        for i in 0..count {
            self.bit((value >> i) & 1);
        }
    }
    fn code(&mut self, code: u64, len: u32) {
        for i in (0..len).rev() {
            self.bit((code >> i) & 1);
        }
    }
    fn bit(&mut self, b: u64) {
        self.acc |= b << self.n;
        self.n += 1;
        if self.n == 8 {
            self.out.push(self.acc as u8);
            self.acc = 0;
            self.n = 0;
        }
    }
    fn zero_bits(&mut self, mut count: u64) {
        while count > 0 && self.n != 0 {
            self.bit(0);
            count -= 1;
        }
        let bytes = usize::try_from(count / 8).expect("fits in memory");
        self.out.resize(self.out.len() + bytes, 0);
        for _ in 0..count % 8 {
            self.bit(0);
        }
    }
    fn finish(mut self) -> Vec<u8> {
        if self.n > 0 {
            self.out.push(self.acc as u8);
        }
        self.out
    }
}

/// Reflected CRC-32 polynomial (IEEE 802.3, as in zip).
const POLY: u32 = 0xedb8_8320;

/// a·b modulo the CRC polynomial (reflected bit order).
fn mult_mod_p(a: u32, mut b: u32) -> u32 {
    let mut m = 1u32 << 31;
    let mut p = 0;
    loop {
        if a & m != 0 {
            p ^= b;
            if a & (m - 1) == 0 {
                return p;
            }
        }
        m >>= 1;
        b = if b & 1 != 0 { (b >> 1) ^ POLY } else { b >> 1 };
    }
}

/// x^(8·n) modulo the CRC polynomial: the effect of n zero bytes.
fn x8n_mod_p(mut n: u64) -> u32 {
    let mut square = 1u32 << 30; // x^1
    for _ in 0..3 {
        square = mult_mod_p(square, square); // x^2, x^4, x^8
    }
    let mut p = 1u32 << 31; // x^0
    while n > 0 {
        if n & 1 != 0 {
            p = mult_mod_p(square, p);
        }
        square = mult_mod_p(square, square);
        n >>= 1;
    }
    p
}

/// CRC-32 of `n` zero bytes.
pub(crate) fn crc32_of_zeros(n: u64) -> u32 {
    !mult_mod_p(x8n_mod_p(n), 0xffff_ffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crc32_bitwise(data: &[u8]) -> u32 {
        let mut crc = 0xffff_ffffu32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ POLY
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    #[test]
    fn crc_of_zeros_matches_a_plain_crc() {
        for n in [0u64, 1, 2, 7, 258, 1000, 65_537] {
            assert_eq!(
                crc32_of_zeros(n),
                crc32_bitwise(&vec![0; n as usize]),
                "n = {n}"
            );
        }
        assert_eq!(crc32_of_zeros(1), 0xd202_ef8d);
    }

    #[test]
    fn sizes_round_up_to_whole_runs() {
        assert_eq!(deflate_zeros(1).1, 1);
        assert_eq!(deflate_zeros(2).1, 259);
        assert_eq!(deflate_zeros(259).1, 259);
        let (stream, size, _) = deflate_zeros(1 << 30);
        assert!(((1 << 30)..(1 << 30) + 258).contains(&size));
        assert!(stream.len() < 1_100_000, "{}", stream.len());
    }
}
