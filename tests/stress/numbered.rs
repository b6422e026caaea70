//! The numbered lines of `velos-flood numbered`, shared by the writer and the tests that
//! check every one of them arrived: line `i` is `i` in ten digits, a space, and filler up
//! to a fixed length, then a newline.

/// The filler after the number, cycled.
const FILLER: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// The shortest line: ten digits, a space, one filler byte and the newline.
pub const MIN_LINE_LEN: usize = 13;

/// Appends line `i`, `len` bytes long including its newline, to `out`.
pub fn push_line(out: &mut Vec<u8>, i: u64, len: usize) {
    let start = out.len();
    let mut digits = [b'0'; 10];
    let mut n = i;
    for digit in digits.iter_mut().rev() {
        *digit = b'0' + (n % 10) as u8;
        n /= 10;
    }
    out.extend_from_slice(&digits);
    out.push(b' ');
    while out.len() - start < len - 1 {
        let room = len - 1 - (out.len() - start);
        out.extend_from_slice(&FILLER[..room.min(FILLER.len())]);
    }
    out.push(b'\n');
}
