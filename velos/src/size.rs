//! Byte sizes as people write them: [`parse_size`] reads `--max-log-size 10MiB` (and the
//! same in config files), [`format_bytes`] writes the memory column (`12.4 MiB`).
//!
//! The suffix says which kind of unit: `KiB MiB GiB` (and the short `K M G`, as `ls -h`
//! and PM2 read them) are powers of 1024, `KB MB GB` powers of 1000, `B` or no suffix
//! is bytes. Suffixes are case-insensitive, a space before them is allowed, and the
//! number may have a fraction (`1.5GiB`).

/// Reads a size: `500`, `500B`, `500K`, `2KiB`, `10MB`, `1.5GiB`.
///
/// The error is one line for clap to show after "invalid value".
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let multiplier: u64 = match suffix.trim_start().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        _ => {
            return Err(format!(
                "unknown unit '{}' in '{text}' (use B, K/KiB, M/MiB, G/GiB, KB, MB or GB)",
                suffix.trim_start()
            ));
        }
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a size (like 500K, 10MiB or 1GB)"))?;
    let bytes = (value * multiplier as f64).round();
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(format!("'{text}' is too large"));
    }
    Ok(bytes as u64)
}

/// A byte count for people: `512 B`, `3.0 KiB`, `12.4 MiB`, `1.2 GiB`.
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A size someone chose, exactly when it is a whole number of GiB or MiB (`512 MiB`,
/// `2 GiB`), else as [`format_bytes`] writes it.
pub fn format_limit(bytes: u64) -> String {
    match bytes {
        0 => "0 B".to_owned(),
        _ if bytes.is_multiple_of(1 << 30) => format!("{} GiB", bytes >> 30),
        _ if bytes.is_multiple_of(1 << 20) => format!("{} MiB", bytes >> 20),
        _ => format_bytes(bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_say_binary_or_decimal() {
        let cases = [
            ("500", 500),
            ("500B", 500),
            ("500K", 500 * 1024),
            ("2KiB", 2048),
            ("2kb", 2000),
            ("10MiB", 10 << 20),
            ("10M", 10 << 20),
            ("10MB", 10_000_000),
            ("1GB", 1_000_000_000),
            ("1G", 1 << 30),
            ("1GiB", 1 << 30),
            ("1.5GiB", 3 << 29),
            ("64 KiB", 64 << 10),
            (" 7 ", 7),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_size(text), Ok(expected), "{text}");
        }
    }

    #[test]
    fn bad_sizes_say_what_is_wrong() {
        assert_eq!(
            parse_size("10XB").unwrap_err(),
            "unknown unit 'XB' in '10XB' (use B, K/KiB, M/MiB, G/GiB, KB, MB or GB)"
        );
        for bad in ["", "MiB", "1.2.3K", "-5", "ten"] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
        assert!(parse_size("99999999999GiB").is_err());
    }

    #[test]
    fn byte_counts_read_well() {
        assert_eq!(format_bytes(0), "0 B");
        assert_eq!(format_bytes(1023), "1023 B");
        assert_eq!(format_bytes(3 * 1024), "3.0 KiB");
        assert_eq!(format_bytes(13_002_342), "12.4 MiB");
        assert_eq!(format_bytes(1_288_490_189), "1.2 GiB");
        assert_eq!(format_limit(512 << 20), "512 MiB");
        assert_eq!(format_limit(2 << 30), "2 GiB");
        assert_eq!(format_limit(3 << 29), "1536 MiB");
        assert_eq!(format_limit(1_500_000), "1.4 MiB");
    }
}
