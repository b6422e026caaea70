//! `velos-flood`: a child process for the log tests that writes as fast as it can.
//!
//! ```text
//! velos-flood numbered LINES LINE_LEN
//! velos-flood mixed TOTAL_BYTES SEED EXPECTED_DIR
//! ```
//!
//! - `numbered` writes lines 1..=LINES of `numbered.rs` on stdout in 1 MiB writes, then
//!   one summary line on stderr: `wrote LINES lines, BYTES bytes in SECS s`.
//! - `mixed` writes about TOTAL_BYTES of awkward output, interleaved between stdout and
//!   stderr in writes of random sizes: several-MiB lines, empty lines, non-UTF-8 bytes,
//!   lines split across many writes, and on each stream a last line without a newline. It
//!   writes the same bytes to `EXPECTED_DIR/out` and `EXPECTED_DIR/err`, and figures to
//!   `EXPECTED_DIR/summary` (`key value` lines) once everything is written.
//!
//! A compiled writer, because the tests want the daemon, not the writer, to be the slow
//! side: `numbered` writes well over 1 GB/s into a pipe nobody slows down.

mod numbered;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

/// Bytes per write in `numbered`.
const WRITE_BYTES: usize = 1 << 20;
/// The first lines of `mixed`, one on each stream, written in interleaved slices.
const FIRST_LONG_LINE: usize = 3 << 20;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number = |i: usize| -> Option<u64> { args.get(i)?.parse().ok() };
    let result = match args.first().map(String::as_str) {
        Some("numbered") => match (number(1), number(2)) {
            (Some(lines), Some(len)) if len as usize >= numbered::MIN_LINE_LEN => {
                write_numbered(lines, len as usize)
            }
            _ => Err(format!(
                "usage: velos-flood numbered LINES LINE_LEN (LINE_LEN >= {})",
                numbered::MIN_LINE_LEN
            )),
        },
        Some("mixed") => match (number(1), number(2), args.get(3)) {
            (Some(total), Some(seed), Some(dir)) => write_mixed(total, seed, Path::new(dir)),
            _ => Err("usage: velos-flood mixed TOTAL_BYTES SEED EXPECTED_DIR".to_owned()),
        },
        _ => Err("usage: velos-flood numbered|mixed ...".to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("velos-flood: {error}");
            ExitCode::FAILURE
        }
    }
}

fn write_numbered(lines: u64, len: usize) -> Result<(), String> {
    let start = Instant::now();
    let mut out = std::io::stdout().lock();
    let mut buf = Vec::with_capacity(WRITE_BYTES + len);
    let mut bytes = 0u64;
    for i in 1..=lines {
        numbered::push_line(&mut buf, i, len);
        if buf.len() + len > WRITE_BYTES || i == lines {
            out.write_all(&buf)
                .map_err(|e| format!("writing stdout: {e}"))?;
            bytes += buf.len() as u64;
            buf.clear();
        }
    }
    out.flush().map_err(|e| format!("flushing stdout: {e}"))?;
    let secs = start.elapsed().as_secs_f64();
    eprintln!("wrote {lines} lines, {bytes} bytes in {secs:.3} s");
    Ok(())
}

/// xorshift64*: reproducible from a seed, and fast.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `low..=high`.
    fn between(&mut self, low: usize, high: usize) -> usize {
        low + (self.next() % (high - low + 1) as u64) as usize
    }

    /// `len` random bytes, any value but `\n`, so they stay one line.
    fn bytes_without_newline(&mut self, out: &mut Vec<u8>, len: usize) {
        let start = out.len();
        while out.len() - start < len {
            let word = self.next().to_le_bytes();
            let take = (len - (out.len() - start)).min(8);
            out.extend(
                word[..take]
                    .iter()
                    .map(|&b| if b == b'\n' { b'\xff' } else { b }),
            );
        }
    }

    /// `len` printable ASCII bytes.
    fn printable(&mut self, out: &mut Vec<u8>, len: usize) {
        for _ in 0..len {
            out.push(b' ' + (self.next() % 95) as u8);
        }
    }
}

/// Both streams and their expected copies.
struct Streams {
    pipes: [Box<dyn Write>; 2],
    copies: [BufWriter<File>; 2],
    bytes: [u64; 2],
    lines: [u64; 2],
    writes: u64,
    long_lines: u64,
    longest_line: usize,
}

impl Streams {
    /// Writes `bytes` to stream `s` (0 stdout, 1 stderr) and its copy, in one write.
    fn put(&mut self, s: usize, bytes: &[u8]) -> Result<(), String> {
        self.pipes[s]
            .write_all(bytes)
            .map_err(|e| format!("writing stream {s}: {e}"))?;
        self.copies[s]
            .write_all(bytes)
            .map_err(|e| format!("writing the expected copy {s}: {e}"))?;
        self.bytes[s] += bytes.len() as u64;
        self.lines[s] += bytes.iter().filter(|&&b| b == b'\n').count() as u64;
        self.writes += 1;
        Ok(())
    }

    /// Writes `piece` to stream `s` in writes of random sizes up to 64 KiB.
    fn put_in_slices(&mut self, s: usize, piece: &[u8], rng: &mut Rng) -> Result<(), String> {
        let mut rest = piece;
        while !rest.is_empty() {
            let n = rng.between(1, 64 << 10).min(rest.len());
            self.put(s, &rest[..n])?;
            rest = &rest[n..];
        }
        Ok(())
    }

    fn total(&self) -> u64 {
        self.bytes[0] + self.bytes[1]
    }
}

fn write_mixed(total: u64, seed: u64, dir: &Path) -> Result<(), String> {
    let create = |name: &str| -> Result<BufWriter<File>, String> {
        let path: PathBuf = dir.join(name);
        File::create(&path)
            .map(|file| BufWriter::with_capacity(1 << 20, file))
            .map_err(|e| format!("creating {}: {e}", path.display()))
    };
    let mut streams = Streams {
        pipes: [
            Box::new(std::io::stdout().lock()),
            Box::new(std::io::stderr().lock()),
        ],
        copies: [create("out")?, create("err")?],
        bytes: [0; 2],
        lines: [0; 2],
        writes: 0,
        long_lines: 0,
        longest_line: 0,
    };
    let mut rng = Rng(seed | 1);
    let start = Instant::now();

    // A long line on each stream, in alternating 64 KiB writes.
    let mut long = [Vec::new(), Vec::new()];
    for line in &mut long {
        rng.bytes_without_newline(line, FIRST_LONG_LINE);
        line.push(b'\n');
    }
    for (out, err) in long[0].chunks(64 << 10).zip(long[1].chunks(64 << 10)) {
        streams.put(0, out)?;
        streams.put(1, err)?;
    }
    streams.long_lines += 2;
    streams.longest_line = FIRST_LONG_LINE;

    let mut piece = Vec::new();
    while streams.total() < total {
        let s = rng.between(0, 1);
        piece.clear();
        match rng.between(0, 99) {
            // A short printable line.
            0..=39 => {
                let len = rng.between(0, 200);
                rng.printable(&mut piece, len);
                piece.push(b'\n');
            }
            // An empty line.
            40..=49 => piece.push(b'\n'),
            // Binary bytes, mostly not UTF-8.
            50..=79 => {
                let len = rng.between(1, 4096);
                rng.bytes_without_newline(&mut piece, len);
                piece.push(b'\n');
            }
            // A line of several MiB.
            80..=82 => {
                let len = rng.between(1 << 20, 6 << 20);
                rng.bytes_without_newline(&mut piece, len);
                piece.push(b'\n');
                streams.long_lines += 1;
                streams.longest_line = streams.longest_line.max(len);
            }
            // Part of a line: the next piece on this stream continues it.
            _ => {
                let len = rng.between(1, 1000);
                rng.bytes_without_newline(&mut piece, len);
            }
        }
        streams.put_in_slices(s, &piece, &mut rng)?;
    }
    // The last line of each stream has no newline.
    streams.put(0, b"last line of stdout, no newline \xff\xfe")?;
    streams.put(1, b"last line of stderr, no newline \xc3\x28")?;
    for (s, pipe) in streams.pipes.iter_mut().enumerate() {
        pipe.flush()
            .map_err(|e| format!("flushing stream {s}: {e}"))?;
    }
    let secs = start.elapsed().as_secs_f64();
    for (s, copy) in streams.copies.iter_mut().enumerate() {
        copy.flush()
            .map_err(|e| format!("flushing the expected copy {s}: {e}"))?;
    }
    let summary = format!(
        "out_bytes {}\nerr_bytes {}\nout_lines {}\nerr_lines {}\nwrites {}\nlong_lines {}\n\
         longest_line {}\nsecs {secs:.3}\n",
        streams.bytes[0],
        streams.bytes[1],
        streams.lines[0] + 1,
        streams.lines[1] + 1,
        streams.writes,
        streams.long_lines,
        streams.longest_line,
    );
    let tmp = dir.join("summary.tmp");
    std::fs::write(&tmp, summary).map_err(|e| format!("writing {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, dir.join("summary")).map_err(|e| format!("renaming summary: {e}"))
}
