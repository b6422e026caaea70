//! `velos list --json` straight from the daemon's MessagePack: the JSON that serde_json
//! writes for the decoded `Vec<ProcessInfo>`, byte for byte, without building a
//! `ProcessInfo` or a `String` per field (decoding and re-encoding 100 processes was
//! four fifths of the command's instructions).
//!
//! The list is walked value by value and written as it goes: maps become objects,
//! arrays arrays, strings are escaped as serde_json escapes them, numbers written as
//! serde_json writes them. What the typed path would print differently is refused, and
//! the caller decodes the typed way instead ([`transcode`] returns `None`): each entry's
//! keys must be [`FIELDS`] in their order, with only the fields serde skips when empty
//! left out (a daemon of another version: the typed path fills in defaults and drops
//! fields it does not know); anything that is not plain data (binary, extension
//! types, non-string keys, invalid UTF-8, nesting deeper than [`MAX_DEPTH`]) or bytes
//! after the list. Entries come out sorted by id, as the typed path sorts them.

/// `ProcessInfo`'s fields in the order serde writes them, each with whether serde
/// always writes it (`false`: skipped when empty). A unit test checks this against the
/// type itself.
pub const FIELDS: &[(&str, bool)] = &[
    ("id", true),
    ("name", true),
    ("instance", true),
    ("pid", true),
    ("status", true),
    ("exit_code", true),
    ("signal", true),
    ("restarts", true),
    ("uptime_ms", true),
    ("script", true),
    ("interpreter", true),
    ("args", true),
    ("cwd", true),
    ("kill_timeout_ms", true),
    ("out_log", true),
    ("err_log", true),
    ("error", true),
    ("log_error", true),
    ("autorestart", true),
    ("restart", true),
    ("stop_exit_codes", true),
    ("cron_restart", true),
    ("cron_next_ms", true),
    ("max_restarts", true),
    ("min_uptime_ms", true),
    ("max_memory_bytes", false),
    ("max_memory_for_ms", false),
    ("max_log_bytes", true),
    ("log_files", true),
    ("restart_in_ms", true),
    ("cpu_percent", true),
    ("memory_bytes", true),
    ("listen", true),
    ("ready", true),
    ("ready_timeout_ms", true),
    ("status_text", true),
    ("kill_signal", true),
    ("killed", false),
    ("time", false),
    ("watch", false),
    ("watch_ignore", false),
    ("watch_delay_ms", false),
    ("watched", false),
    ("watch_error", false),
    ("restart_counts", true),
    ("last_restart", true),
];

/// The deepest nesting inside an entry that is written (`restart_counts` is level 1).
const MAX_DEPTH: usize = 4;

/// The JSON of the list whose MessagePack is `bytes`, on one line with a final newline;
/// `None` when the typed path must do it (see the module's docs).
pub fn transcode(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut input = Input { bytes, pos: 0 };
    let count = input.array_len()?;
    // About 1.3 bytes of JSON per byte of MessagePack (keys gain quotes and colons).
    let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 2 + 16);
    out.push(b'[');
    // Each entry's id and where its JSON starts.
    let mut entries: Vec<(u64, usize)> = Vec::with_capacity(count.min(bytes.len()));
    for index in 0..count {
        if index > 0 {
            out.push(b',');
        }
        let start = out.len();
        let id = entry(&mut input, &mut out)?;
        entries.push((id, start));
    }
    if input.pos != bytes.len() {
        return None;
    }
    if !entries.is_sorted_by_key(|(id, _)| *id) {
        out = sorted(&out, &mut entries);
    }
    out.extend_from_slice(b"]\n");
    Some(out)
}

/// `out` (`[` and the entries, with commas) with the entries in id order (a stable sort,
/// as the typed path's).
fn sorted(out: &[u8], entries: &mut [(u64, usize)]) -> Vec<u8> {
    let ends: Vec<usize> = entries
        .iter()
        .skip(1)
        .map(|(_, start)| start - 1)
        .chain(std::iter::once(out.len()))
        .collect();
    let mut spans: Vec<(u64, usize, usize)> = entries
        .iter()
        .zip(ends)
        .map(|(&(id, start), end)| (id, start, end))
        .collect();
    spans.sort_by_key(|(id, _, _)| *id);
    let mut sorted = Vec::with_capacity(out.len() + 3);
    sorted.push(b'[');
    for (index, (_, start, end)) in spans.into_iter().enumerate() {
        if index > 0 {
            sorted.push(b',');
        }
        sorted.extend_from_slice(&out[start..end]);
    }
    sorted
}

/// Writes one entry (a map with [`FIELDS`]' keys) as an object; returns its id.
fn entry(input: &mut Input, out: &mut Vec<u8>) -> Option<u64> {
    let len = input.map_len()?;
    let mut fields = FIELDS.iter();
    let mut id = None;
    out.push(b'{');
    for index in 0..len {
        if index > 0 {
            out.push(b',');
        }
        let key = input.str()?;
        // The next field with this name; those passed over must be ones serde skips.
        loop {
            let (name, always) = fields.next()?;
            if name.len() == key.len() && name.bytes().zip(key).all(|(a, b)| a == *b) {
                break;
            }
            if *always {
                return None;
            }
        }
        // A field name: nothing to escape.
        out.push(b'"');
        out.extend_from_slice(key);
        out.extend_from_slice(b"\":");
        if key == b"id" {
            let start = input.pos;
            id = input.unsigned();
            input.pos = start;
        }
        value(input, out, 1)?;
    }
    if fields.any(|(_, always)| *always) {
        return None;
    }
    out.push(b'}');
    id
}

/// Writes one value, `depth` levels inside an entry.
fn value(input: &mut Input, out: &mut Vec<u8>, depth: usize) -> Option<()> {
    let marker = input.peek()?;
    match marker {
        0x00..=0x7f | 0xcc..=0xcf => write_u64(out, input.unsigned()?),
        0xe0..=0xff | 0xd0..=0xd3 => write_i64(out, input.signed()?),
        0xc0 => {
            input.pos += 1;
            out.extend_from_slice(b"null");
        }
        0xc2 => {
            input.pos += 1;
            out.extend_from_slice(b"false");
        }
        0xc3 => {
            input.pos += 1;
            out.extend_from_slice(b"true");
        }
        0xca => {
            input.pos += 1;
            let bits = input.be(4)? as u32;
            write_f64(out, f64::from(f32::from_bits(bits)));
        }
        0xcb => {
            input.pos += 1;
            write_f64(out, f64::from_bits(input.be(8)?));
        }
        0xa0..=0xbf | 0xd9..=0xdb => string(input.str()?, out)?,
        0x90..=0x9f | 0xdc | 0xdd if depth < MAX_DEPTH => {
            let len = input.array_len()?;
            out.push(b'[');
            for index in 0..len {
                if index > 0 {
                    out.push(b',');
                }
                value(input, out, depth + 1)?;
            }
            out.push(b']');
        }
        0x80..=0x8f | 0xde | 0xdf if depth < MAX_DEPTH => {
            let len = input.map_len()?;
            out.push(b'{');
            for index in 0..len {
                if index > 0 {
                    out.push(b',');
                }
                string(input.str()?, out)?;
                out.push(b':');
                value(input, out, depth + 1)?;
            }
            out.push(b'}');
        }
        // Binary, extension types, the unused marker, or too deep.
        _ => return None,
    }
    Some(())
}

/// The bytes serde_json escapes in a string: `"`, `\` and the control characters below
/// 0x20 (nothing else: not 0x7f, not `/`, not non-ASCII).
static ESCAPED: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 0x20 {
        table[byte] = true;
        byte += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table
};

/// Writes `bytes` as a JSON string, escaped as serde_json escapes ([`ESCAPED`]: `\b \t
/// \n \f \r` by name, the other control characters as `\u00XX`). `None` unless `bytes`
/// is UTF-8.
fn string(bytes: &[u8], out: &mut Vec<u8>) -> Option<()> {
    if !bytes.is_ascii() {
        std::str::from_utf8(bytes).ok()?;
    }
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut rest = bytes;
    while let Some(at) = rest.iter().position(|&byte| ESCAPED[usize::from(byte)]) {
        out.extend_from_slice(&rest[..at]);
        match rest[at] {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            0x0c => out.extend_from_slice(b"\\f"),
            b'\r' => out.extend_from_slice(b"\\r"),
            byte => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(byte >> 4)]);
                out.push(HEX[usize::from(byte & 0x0f)]);
            }
        }
        rest = &rest[at + 1..];
    }
    out.extend_from_slice(rest);
    out.push(b'"');
    Some(())
}

fn write_u64(out: &mut Vec<u8>, n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut n = n;
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

fn write_i64(out: &mut Vec<u8>, n: i64) {
    if n < 0 {
        out.push(b'-');
    }
    write_u64(out, n.unsigned_abs());
}

/// As serde_json writes an `f64`: its shortest form, `null` when not finite.
fn write_f64(out: &mut Vec<u8>, n: f64) {
    // Writing to a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, &n);
}

/// A cursor over the MessagePack of the list.
struct Input<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Input<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn byte(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.pos += 1;
        Some(byte)
    }

    fn take(&mut self, len: usize) -> Option<&'a [u8]> {
        let taken = self.bytes.get(self.pos..self.pos.checked_add(len)?)?;
        self.pos += len;
        Some(taken)
    }

    /// A big-endian unsigned integer of `len` (1, 2, 4 or 8) bytes.
    fn be(&mut self, len: usize) -> Option<u64> {
        Some(
            self.take(len)?
                .iter()
                .fold(0, |n, byte| (n << 8) | u64::from(*byte)),
        )
    }

    /// A non-negative integer in an unsigned encoding.
    fn unsigned(&mut self) -> Option<u64> {
        match self.byte()? {
            marker @ 0x00..=0x7f => Some(u64::from(marker)),
            0xcc => self.be(1),
            0xcd => self.be(2),
            0xce => self.be(4),
            0xcf => self.be(8),
            _ => None,
        }
    }

    /// An integer in a signed encoding.
    fn signed(&mut self) -> Option<i64> {
        match self.byte()? {
            marker @ 0xe0..=0xff => Some(i64::from(marker as i8)),
            0xd0 => Some(i64::from(self.be(1)? as u8 as i8)),
            0xd1 => Some(i64::from(self.be(2)? as u16 as i16)),
            0xd2 => Some(i64::from(self.be(4)? as u32 as i32)),
            0xd3 => Some(self.be(8)? as i64),
            _ => None,
        }
    }

    fn str(&mut self) -> Option<&'a [u8]> {
        let len = match self.byte()? {
            marker @ 0xa0..=0xbf => usize::from(marker & 0x1f),
            0xd9 => self.be(1)? as usize,
            0xda => self.be(2)? as usize,
            0xdb => usize::try_from(self.be(4)?).ok()?,
            _ => return None,
        };
        self.take(len)
    }

    /// An array's length; at most the bytes left (each element takes one at least).
    fn array_len(&mut self) -> Option<usize> {
        let len = match self.byte()? {
            marker @ 0x90..=0x9f => usize::from(marker & 0x0f),
            0xdc => self.be(2)? as usize,
            0xdd => usize::try_from(self.be(4)?).ok()?,
            _ => return None,
        };
        (len <= self.bytes.len() - self.pos).then_some(len)
    }

    /// A map's length in pairs; at most the bytes left.
    fn map_len(&mut self) -> Option<usize> {
        let len = match self.byte()? {
            marker @ 0x80..=0x8f => usize::from(marker & 0x0f),
            0xde => self.be(2)? as usize,
            0xdf => usize::try_from(self.be(4)?).ok()?,
            _ => return None,
        };
        (len <= self.bytes.len() - self.pos).then_some(len)
    }
}

#[cfg(test)]
mod tests {
    use velos_proto::{LastRestart, ProcessInfo, ProcessStatus, RestartReason, WatchedCount};

    use super::*;

    /// What the typed path prints: decoded, sorted by id, written by serde_json.
    fn typed(bytes: &[u8]) -> Vec<u8> {
        let mut list: Vec<ProcessInfo> = velos_proto::rpc::decode_value(bytes).unwrap();
        list.sort_by_key(|process| process.id);
        let mut text = serde_json::to_vec(&list).unwrap();
        text.push(b'\n');
        text
    }

    fn msgpack<T: serde::Serialize>(value: &T) -> Vec<u8> {
        // The daemon's encoding: structs as maps.
        let payload = velos_proto::rpc::encode_response(0, Ok(value)).unwrap();
        velos_proto::rpc::decode_response_raw(&payload)
            .unwrap()
            .unwrap()
            .1
            .unwrap()
            .to_vec()
    }

    /// A process with every field set, skippable ones too, and awkward strings.
    fn full(id: u32) -> ProcessInfo {
        ProcessInfo {
            id,
            name: format!("api-{id}"),
            instance: 2,
            pid: Some(4242),
            status: ProcessStatus::Errored,
            exit_code: Some(-3),
            signal: Some(15),
            restarts: 7,
            uptime_ms: Some(u64::MAX),
            script: "/srv/a \"quoted\" \\ path/\u{1}\u{1f}\u{7f}/é/🚀.js".into(),
            interpreter: Some("node".into()),
            args: vec!["--x".into(), "tab\there\nnew\rret\u{8}\u{c}".into()],
            cwd: "/srv".into(),
            kill_timeout_ms: 5000,
            out_log: "/h/logs/api-out.log".into(),
            err_log: "/h/logs/api-err.log".into(),
            error: Some("exited 3 times in a row".into()),
            log_error: Some("disk full".into()),
            autorestart: true,
            restart: velos_proto::RestartMode::Always,
            stop_exit_codes: vec![0, 255],
            cron_restart: Some("0 * * * *".into()),
            cron_next_ms: Some(12),
            max_restarts: 16,
            min_uptime_ms: 1000,
            max_memory_bytes: Some(1 << 30),
            max_memory_for_ms: Some(3),
            max_log_bytes: Some(10_485_760),
            log_files: 5,
            restart_in_ms: Some(100),
            cpu_percent: Some(12.3),
            memory_bytes: Some(1_662_976),
            listen: vec!["tcp:127.0.0.1:8080".into()],
            ready: Some("listen".into()),
            ready_timeout_ms: Some(30_000),
            status_text: Some("ok".into()),
            kill_signal: "SIGTERM".into(),
            killed: true,
            time: true,
            watch: vec!["src".into()],
            watch_ignore: vec!["uploads".into()],
            watch_delay_ms: Some(500),
            watched: Some(WatchedCount {
                directories: 3,
                files: 10,
            }),
            watch_error: Some("too many files".into()),
            restart_counts: velos_proto::RestartCounts {
                crash: 1,
                watch: 2,
                memory: 3,
                cron: 4,
                manual: 5,
            },
            last_restart: Some(LastRestart {
                reason: RestartReason::Memory,
                detail: "1.1 GiB over 1 GiB".into(),
                time_ms: 99,
            }),
        }
    }

    fn keys(process: &ProcessInfo) -> Vec<String> {
        match serde_json::to_value(process).unwrap() {
            serde_json::Value::Object(map) => map.keys().cloned().collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn fields_are_process_infos_in_order_with_what_serde_skips() {
        let all: Vec<&str> = FIELDS.iter().map(|(name, _)| *name).collect();
        // serde_json's map keeps the order of insertion (preserve_order) or sorts; compare
        // with the order MessagePack carries instead.
        let mut input = Input {
            bytes: &msgpack(&full(0)),
            pos: 0,
        };
        let len = input.map_len().unwrap();
        let mut written = Vec::new();
        for _ in 0..len {
            written.push(String::from_utf8(input.str().unwrap().to_vec()).unwrap());
            let mut sink = Vec::new();
            value(&mut input, &mut sink, 1).unwrap();
        }
        assert_eq!(
            written, all,
            "FIELDS must list ProcessInfo's fields in order"
        );
        let mut always: Vec<&str> = FIELDS
            .iter()
            .filter(|(_, always)| *always)
            .map(|(name, _)| *name)
            .collect();
        always.sort_unstable();
        let mut default = keys(&ProcessInfo::default());
        default.sort_unstable();
        assert_eq!(
            default, always,
            "the fields serde writes for a default entry"
        );
    }

    #[test]
    fn the_json_is_the_typed_paths_byte_for_byte() {
        let cases: Vec<Vec<ProcessInfo>> = vec![
            vec![],
            vec![ProcessInfo::default()],
            vec![full(0), ProcessInfo::default(), full(7)],
            (0..300).map(full).collect(),
            // Out of id order: sorted as the typed path sorts.
            vec![full(5), full(1), full(3), full(1)],
            vec![ProcessInfo {
                cpu_percent: Some(0.0),
                ..full(1)
            }],
            vec![ProcessInfo {
                cpu_percent: Some(f64::NAN),
                exit_code: Some(i32::MIN),
                ..full(u32::MAX)
            }],
        ];
        for list in cases {
            let bytes = msgpack(&list);
            let json = transcode(&bytes).expect("transcoded");
            assert_eq!(
                String::from_utf8(json).unwrap(),
                String::from_utf8(typed(&bytes)).unwrap()
            );
        }
    }

    #[test]
    fn what_the_typed_path_would_print_differently_is_left_to_it() {
        #[derive(serde::Serialize)]
        struct Old {
            id: u32,
            name: String,
        }
        #[derive(serde::Serialize)]
        struct Renamed {
            id: u32,
            nom: String,
        }
        let missing_fields = msgpack(&vec![Old {
            id: 1,
            name: "a".into(),
        }]);
        assert!(transcode(&missing_fields).is_none());
        let unknown_field = msgpack(&vec![Renamed {
            id: 1,
            nom: "a".into(),
        }]);
        assert!(transcode(&unknown_field).is_none());

        let good = msgpack(&vec![full(1)]);
        let mut trailing = good.clone();
        trailing.push(0xc0);
        assert!(transcode(&trailing).is_none());
        assert!(transcode(&good[..good.len() - 1]).is_none());
        assert!(transcode(&[]).is_none());
        assert!(transcode(&[0xc1]).is_none());

        // Invalid UTF-8 in a value: "api-1" becomes "api-\xff".
        let mut invalid = good.clone();
        let at = invalid
            .windows(5)
            .position(|window| window == b"api-1")
            .unwrap();
        invalid[at + 4] = 0xff;
        assert!(transcode(&invalid).is_none());
    }
}
