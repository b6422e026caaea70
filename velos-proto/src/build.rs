//! The build stamp of a `velosd` executable: what tells a daemon started from an older
//! build from the one the CLI would start now.
//!
//! The daemon takes the stamp of its own executable once, at start, and reports it in
//! `daemon.ping` (`PingInfo::build`); the CLI takes the stamp of the `velosd` it would
//! start and compares. A rebuild or a reinstall replaces the file (new size or mtime), so
//! the stamps differ, while the running daemon still runs the old code. Size and mtime
//! are enough for that and cost one `stat`; a hash of the file would cost the CLI a read
//! of megabytes per command.

use std::fs::Metadata;
use std::time::UNIX_EPOCH;

/// The stamp of an executable: `<size>:<mtime seconds>.<nanoseconds>`.
///
/// # Examples
///
/// ```no_run
/// let metadata = std::fs::metadata("/usr/local/bin/velosd")?;
/// println!("{}", velos_proto::build_stamp(&metadata));
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn build_stamp(metadata: &Metadata) -> String {
    let mtime = metadata
        .modified()
        .ok()
        .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
        .unwrap_or_default();
    format!(
        "{}:{}.{:09}",
        metadata.len(),
        mtime.as_secs(),
        mtime.subsec_nanos()
    )
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;

    #[test]
    fn a_new_mtime_or_size_gives_a_new_stamp() {
        let dir = tempfile_dir();
        let path = dir.join("velosd");
        std::fs::write(&path, b"old build").unwrap();
        let file = std::fs::File::options().write(true).open(&path).unwrap();
        file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_nanos(1_700_000_000_000_000_123))
            .unwrap();
        let old = build_stamp(&std::fs::metadata(&path).unwrap());
        assert_eq!(old, "9:1700000000.000000123");
        file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000))
            .unwrap();
        assert_ne!(build_stamp(&std::fs::metadata(&path).unwrap()), old);
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("velos-proto-build-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
