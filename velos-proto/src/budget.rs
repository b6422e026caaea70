//! The decoding budget of a request, checked by walking its MessagePack without building
//! anything.
//!
//! A frame may carry 16 MiB, and 16 MiB of MessagePack can spell eight million values
//! (`[nil]` is two bytes). Building a tree of them costs gigabytes, so the daemon never
//! does: [`value_len`] walks one value marker by marker, counting values and nesting, and
//! gives up at the first one over the budget, before reading it. What passes is decoded
//! straight into its typed form; parameters the method does not know are skipped by the
//! typed decoder, never materialised.
//!
//! | budget | limit |
//! | --- | --- |
//! | values (every key, element and container counts one) | [`MAX_REQUEST_VALUES`] |
//! | nesting of maps and arrays | [`MAX_REQUEST_DEPTH`] |
//! | bytes | the frame's [`crate::frame::MAX_PAYLOAD_BYTES`] |

use crate::Error;

/// The most values one request may hold, counting every map key, element and container.
/// A `process.start` with a large environment holds a few hundred.
pub const MAX_REQUEST_VALUES: usize = 65_536;

/// The deepest nesting of maps and arrays one request may have; the params map is level 1,
/// and `env` inside it level 2.
pub const MAX_REQUEST_DEPTH: usize = 32;

/// A cursor over a payload that reads MessagePack markers and lengths without copying.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    /// Values still allowed.
    values_left: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader {
            bytes,
            pos: 0,
            values_left: MAX_REQUEST_VALUES,
        }
    }

    /// Bytes read so far.
    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    /// Bytes not read yet.
    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    /// The next byte, without taking it.
    pub(crate) fn peek(&self) -> Result<u8, Error> {
        self.bytes.get(self.pos).copied().ok_or_else(truncated)
    }

    pub(crate) fn byte(&mut self) -> Result<u8, Error> {
        let byte = self.peek()?;
        self.pos += 1;
        Ok(byte)
    }

    pub(crate) fn take(&mut self, len: u64) -> Result<&'a [u8], Error> {
        let len = usize::try_from(len)
            .ok()
            .filter(|len| *len <= self.remaining())
            .ok_or_else(truncated)?;
        let taken = &self.bytes[self.pos..self.pos + len];
        self.pos += len;
        Ok(taken)
    }

    /// A big-endian unsigned integer of `len` (1, 2, 4 or 8) bytes.
    fn be(&mut self, len: u64) -> Result<u64, Error> {
        Ok(self
            .take(len)?
            .iter()
            .fold(0, |n, byte| (n << 8) | u64::from(*byte)))
    }

    /// Reads an integer that must not be negative, in any of its encodings; `None` when the
    /// next value is not such an integer (nothing is consumed then but its marker).
    pub(crate) fn unsigned(&mut self) -> Result<Option<u64>, Error> {
        let marker = self.byte()?;
        Ok(match marker {
            0x00..=0x7f => Some(u64::from(marker)),
            0xcc => Some(self.be(1)?),
            0xcd => Some(self.be(2)?),
            0xce => Some(self.be(4)?),
            0xcf => Some(self.be(8)?),
            0xd0 => u64::try_from(self.be(1)? as u8 as i8).ok(),
            0xd1 => u64::try_from(self.be(2)? as u16 as i16).ok(),
            0xd2 => u64::try_from(self.be(4)? as u32 as i32).ok(),
            0xd3 => u64::try_from(self.be(8)? as i64).ok(),
            _ => None,
        })
    }

    /// Reads an array header; `None` when the next value is not an array.
    pub(crate) fn array_len(&mut self) -> Result<Option<u64>, Error> {
        let marker = self.byte()?;
        Ok(match marker {
            0x90..=0x9f => Some(u64::from(marker & 0x0f)),
            0xdc => Some(self.be(2)?),
            0xdd => Some(self.be(4)?),
            _ => None,
        })
    }

    /// Reads a string's bytes, borrowed; `None` when the next value is not a string.
    pub(crate) fn str_bytes(&mut self) -> Result<Option<&'a [u8]>, Error> {
        let marker = self.byte()?;
        let len = match marker {
            0xa0..=0xbf => u64::from(marker & 0x1f),
            0xd9 => self.be(1)?,
            0xda => self.be(2)?,
            0xdb => self.be(4)?,
            _ => return Ok(None),
        };
        self.take(len).map(Some)
    }

    /// Skips one whole value, counting it and everything inside it against the budget;
    /// `depth` is the nesting of the container it is in (0 at the top).
    pub(crate) fn skip_value(&mut self, depth: usize) -> Result<(), Error> {
        self.count(1)?;
        let marker = self.byte()?;
        let data = match marker {
            0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => 0,
            0x80..=0x8f => return self.skip_items(2 * u64::from(marker & 0x0f), depth),
            0x90..=0x9f => return self.skip_items(u64::from(marker & 0x0f), depth),
            0xa0..=0xbf => u64::from(marker & 0x1f),
            0xc1 => {
                return Err(Error::Decode(
                    "marker 0xc1 is never used in MessagePack".into(),
                ));
            }
            0xc4 | 0xd9 => self.be(1)?,
            0xc5 | 0xda => self.be(2)?,
            0xc6 | 0xdb => self.be(4)?,
            // ext: the length, then a type byte, then the data
            0xc7 => self.be(1)? + 1,
            0xc8 => self.be(2)? + 1,
            0xc9 => self.be(4)? + 1,
            0xca => 4,
            0xcb => 8,
            0xcc | 0xd0 => 1,
            0xcd | 0xd1 => 2,
            0xce | 0xd2 => 4,
            0xcf | 0xd3 => 8,
            0xd4 => 2,
            0xd5 => 3,
            0xd6 => 5,
            0xd7 => 9,
            0xd8 => 17,
            0xdc => {
                let len = self.be(2)?;
                return self.skip_items(len, depth);
            }
            0xdd => {
                let len = self.be(4)?;
                return self.skip_items(len, depth);
            }
            0xde => {
                let len = self.be(2)?;
                return self.skip_items(2 * len, depth);
            }
            0xdf => {
                let len = self.be(4)?;
                return self.skip_items(2 * len, depth);
            }
        };
        self.take(data).map(drop)
    }

    /// Skips the `count` values inside a container at nesting `depth`.
    fn skip_items(&mut self, count: u64, depth: usize) -> Result<(), Error> {
        let depth = depth + 1;
        if depth > MAX_REQUEST_DEPTH {
            return Err(Error::TooDeep {
                limit: MAX_REQUEST_DEPTH,
            });
        }
        // Refused before reading any of them: a container that claims more values than
        // the budget allows, or than there are bytes left (each value takes one at least).
        let count = usize::try_from(count).unwrap_or(usize::MAX);
        if count > self.values_left {
            return Err(Error::TooManyValues {
                limit: MAX_REQUEST_VALUES,
            });
        }
        if count > self.remaining() {
            return Err(truncated());
        }
        for _ in 0..count {
            self.skip_value(depth)?;
        }
        Ok(())
    }

    fn count(&mut self, values: usize) -> Result<(), Error> {
        self.values_left = self
            .values_left
            .checked_sub(values)
            .ok_or(Error::TooManyValues {
                limit: MAX_REQUEST_VALUES,
            })?;
        Ok(())
    }
}

fn truncated() -> Error {
    Error::Decode("the MessagePack ends in the middle of a value".into())
}

/// The length in bytes of the one MessagePack value `bytes` starts with, if it is within
/// the budget: at most [`MAX_REQUEST_VALUES`] values and [`MAX_REQUEST_DEPTH`] levels.
/// Never allocates, never panics.
pub fn value_len(bytes: &[u8]) -> Result<usize, Error> {
    let mut reader = Reader::new(bytes);
    reader.skip_value(0)?;
    Ok(reader.position())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded<T: serde::Serialize>(value: &T) -> Vec<u8> {
        rmp_serde::to_vec_named(value).unwrap()
    }

    #[test]
    fn every_kind_of_value_is_measured_exactly() {
        use rmpv::Value;
        let ints: Vec<Value> = vec![
            0.into(),
            (-1).into(),
            200.into(),
            (-200).into(),
            70_000.into(),
            (-70_000).into(),
            u64::MAX.into(),
            i64::MIN.into(),
        ];
        let strs: Vec<Value> = ["", &"a".repeat(31), &"b".repeat(255), &"c".repeat(70_000)]
            .into_iter()
            .map(Value::from)
            .collect();
        let exts = vec![
            Value::Ext(1, vec![0; 1]),
            Value::Ext(2, vec![0; 16]),
            Value::Ext(3, vec![0; 3]),
            Value::Ext(4, vec![0; 300]),
        ];
        let value = Value::Map(vec![
            ("nil".into(), Value::Nil),
            ("bool".into(), true.into()),
            ("ints".into(), Value::Array(ints)),
            (
                "floats".into(),
                Value::Array(vec![Value::F32(1.5), Value::F64(2.5)]),
            ),
            ("strs".into(), Value::Array(strs)),
            ("bin".into(), Value::Binary(vec![1; 300])),
            ("ext".into(), Value::Array(exts)),
            ("big array".into(), Value::Array(vec![Value::Nil; 20])),
        ]);
        let mut bytes = Vec::new();
        rmpv::encode::write_value(&mut bytes, &value).unwrap();
        let len = bytes.len();
        bytes.extend_from_slice(b"tail");
        assert_eq!(value_len(&bytes).unwrap(), len);
    }

    #[test]
    fn a_container_claiming_more_values_than_the_budget_is_refused_before_reading() {
        // An array32 claiming 8 million elements, with only three bytes after it.
        let bytes = [0xdd, 0x00, 0x80, 0x00, 0x00, 0x91, 0xc0, 0xc0];
        assert!(matches!(
            value_len(&bytes),
            Err(Error::TooManyValues {
                limit: MAX_REQUEST_VALUES
            })
        ));
    }

    #[test]
    fn many_small_values_run_out_of_budget() {
        let under = vec![vec![(); 1]; MAX_REQUEST_VALUES / 2 - 1];
        assert!(value_len(&encoded(&under)).is_ok());
        let over = vec![vec![(); 1]; MAX_REQUEST_VALUES / 2];
        assert!(matches!(
            value_len(&encoded(&over)),
            Err(Error::TooManyValues { .. })
        ));
    }

    #[test]
    fn deep_nesting_is_refused() {
        let mut deep = vec![0x91; MAX_REQUEST_DEPTH];
        deep.push(0xc0);
        assert!(value_len(&deep).is_ok());
        let mut deeper = vec![0x91; MAX_REQUEST_DEPTH + 1];
        deeper.push(0xc0);
        assert!(matches!(
            value_len(&deeper),
            Err(Error::TooDeep {
                limit: MAX_REQUEST_DEPTH
            })
        ));
        let bomb = vec![0x91; 1 << 20];
        assert!(matches!(value_len(&bomb), Err(Error::TooDeep { .. })));
    }

    #[test]
    fn truncated_and_reserved_bytes_are_decode_errors() {
        for bytes in [
            &[][..],
            &[0xc1],
            &[0xa5, b'a'],
            &[0xdb, 0xff, 0xff, 0xff, 0xff],
            &[0x92, 0xc0],
            &[0xcf, 0],
        ] {
            assert!(
                matches!(value_len(bytes), Err(Error::Decode(_))),
                "{bytes:x?} -> {:?}",
                value_len(bytes)
            );
        }
    }
}
