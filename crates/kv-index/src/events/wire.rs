//! A minimal msgpack reader and writer over byte slices: exactly the forms vLLM's msgspec
//! writes, bounds-checked reads that never panic, and no allocation for skipping.

/// Why a read failed; the caller maps it to a drop reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ReadError {
    /// The input ended inside a value.
    Truncated,
    /// A value of another type was found.
    WrongType,
    /// Nesting deeper than the skip limit.
    TooDeep,
    /// A string that is not UTF-8.
    BadUtf8,
}

/// Nesting limit when skipping unknown values; vLLM payloads nest at most 5 deep.
const MAX_DEPTH: u32 = 32;

/// An integer as msgpack holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Int {
    U(u64),
    I(i64),
}

impl Int {
    pub(super) fn to_i64(self) -> Option<i64> {
        match self {
            Int::U(v) => i64::try_from(v).ok(),
            Int::I(v) => Some(v),
        }
    }

    pub(super) fn to_u64(self) -> Option<u64> {
        match self {
            Int::U(v) => Some(v),
            Int::I(v) => u64::try_from(v).ok(),
        }
    }
}

/// The first byte of a value, classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Nil,
    Bool,
    Int,
    Float,
    Str,
    Bin,
    Array,
    Map,
    Ext,
    Reserved,
}

pub(super) fn kind_of(marker: u8) -> Kind {
    match marker {
        0x00..=0x7f | 0xe0..=0xff | 0xcc..=0xd3 => Kind::Int,
        0x80..=0x8f | 0xde | 0xdf => Kind::Map,
        0x90..=0x9f | 0xdc | 0xdd => Kind::Array,
        0xa0..=0xbf | 0xd9..=0xdb => Kind::Str,
        0xc0 => Kind::Nil,
        0xc2 | 0xc3 => Kind::Bool,
        0xc4..=0xc6 => Kind::Bin,
        0xca | 0xcb => Kind::Float,
        0xc7..=0xc9 | 0xd4..=0xd8 => Kind::Ext,
        0xc1 => Kind::Reserved,
    }
}

#[derive(Debug, Clone)]
pub(super) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub(super) fn pos(&self) -> usize {
        self.pos
    }

    pub(super) fn set_pos(&mut self, pos: usize) {
        self.pos = pos.min(self.buf.len());
    }

    pub(super) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(super) fn slice(&self, start: usize, end: usize) -> &'a [u8] {
        &self.buf[start.min(end)..end.min(self.buf.len())]
    }

    pub(super) fn peek_kind(&self) -> Result<Kind, ReadError> {
        self.buf
            .get(self.pos)
            .map(|&m| kind_of(m))
            .ok_or(ReadError::Truncated)
    }

    fn byte(&mut self) -> Result<u8, ReadError> {
        let b = *self.buf.get(self.pos).ok_or(ReadError::Truncated)?;
        self.pos += 1;
        Ok(b)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ReadError> {
        if self.remaining() < n {
            return Err(ReadError::Truncated);
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn be<const N: usize>(&mut self) -> Result<[u8; N], ReadError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn len_of(&mut self, width: usize) -> Result<usize, ReadError> {
        Ok(match width {
            1 => usize::from(self.byte()?),
            2 => usize::from(u16::from_be_bytes(self.be()?)),
            _ => u32::from_be_bytes(self.be()?) as usize,
        })
    }

    /// Consumes a nil if one is next.
    pub(super) fn try_nil(&mut self) -> bool {
        if self.buf.get(self.pos) == Some(&0xc0) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    pub(super) fn read_int(&mut self) -> Result<Int, ReadError> {
        let start = self.pos;
        let marker = self.byte()?;
        let value = match marker {
            0x00..=0x7f => Int::U(u64::from(marker)),
            0xe0..=0xff => Int::I(i64::from(marker as i8)),
            0xcc => Int::U(u64::from(self.byte()?)),
            0xcd => Int::U(u64::from(u16::from_be_bytes(self.be()?))),
            0xce => Int::U(u64::from(u32::from_be_bytes(self.be()?))),
            0xcf => Int::U(u64::from_be_bytes(self.be()?)),
            0xd0 => Int::I(i64::from(self.byte()? as i8)),
            0xd1 => Int::I(i64::from(i16::from_be_bytes(self.be()?))),
            0xd2 => Int::I(i64::from(i32::from_be_bytes(self.be()?))),
            0xd3 => Int::I(i64::from_be_bytes(self.be()?)),
            _ => {
                self.pos = start;
                return Err(ReadError::WrongType);
            }
        };
        Ok(value)
    }

    pub(super) fn read_f64(&mut self) -> Result<f64, ReadError> {
        let start = self.pos;
        match self.byte()? {
            0xcb => Ok(f64::from_be_bytes(self.be()?)),
            0xca => Ok(f64::from(f32::from_be_bytes(self.be()?))),
            _ => {
                self.pos = start;
                match self.read_int()? {
                    Int::U(v) => Ok(v as f64),
                    Int::I(v) => Ok(v as f64),
                }
            }
        }
    }

    pub(super) fn read_str(&mut self) -> Result<&'a str, ReadError> {
        let start = self.pos;
        let marker = self.byte()?;
        let len = match marker {
            0xa0..=0xbf => usize::from(marker & 0x1f),
            0xd9 => self.len_of(1)?,
            0xda => self.len_of(2)?,
            0xdb => self.len_of(4)?,
            _ => {
                self.pos = start;
                return Err(ReadError::WrongType);
            }
        };
        std::str::from_utf8(self.take(len)?).map_err(|_| ReadError::BadUtf8)
    }

    pub(super) fn read_bin(&mut self) -> Result<&'a [u8], ReadError> {
        let start = self.pos;
        let len = match self.byte()? {
            0xc4 => self.len_of(1)?,
            0xc5 => self.len_of(2)?,
            0xc6 => self.len_of(4)?,
            _ => {
                self.pos = start;
                return Err(ReadError::WrongType);
            }
        };
        self.take(len)
    }

    pub(super) fn read_array_len(&mut self) -> Result<usize, ReadError> {
        let start = self.pos;
        let marker = self.byte()?;
        match marker {
            0x90..=0x9f => Ok(usize::from(marker & 0x0f)),
            0xdc => self.len_of(2),
            0xdd => self.len_of(4),
            _ => {
                self.pos = start;
                Err(ReadError::WrongType)
            }
        }
    }

    pub(super) fn read_map_len(&mut self) -> Result<usize, ReadError> {
        let start = self.pos;
        let marker = self.byte()?;
        match marker {
            0x80..=0x8f => Ok(usize::from(marker & 0x0f)),
            0xde => self.len_of(2),
            0xdf => self.len_of(4),
            _ => {
                self.pos = start;
                Err(ReadError::WrongType)
            }
        }
    }

    /// Skips one complete value of any type.
    pub(super) fn skip(&mut self) -> Result<(), ReadError> {
        self.skip_depth(0)
    }

    fn skip_depth(&mut self, depth: u32) -> Result<(), ReadError> {
        if depth > MAX_DEPTH {
            return Err(ReadError::TooDeep);
        }
        let marker = self.byte()?;
        let (skip_bytes, children) = match marker {
            0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => (0, 0),
            0x80..=0x8f => (0, 2 * usize::from(marker & 0x0f)),
            0x90..=0x9f => (0, usize::from(marker & 0x0f)),
            0xa0..=0xbf => (usize::from(marker & 0x1f), 0),
            0xc1 => return Err(ReadError::WrongType),
            0xc4 | 0xd9 => (self.len_of(1)?, 0),
            0xc5 | 0xda => (self.len_of(2)?, 0),
            0xc6 | 0xdb => (self.len_of(4)?, 0),
            0xc7 => (self.len_of(1)? + 1, 0),
            0xc8 => (self.len_of(2)? + 1, 0),
            0xc9 => (self.len_of(4)? + 1, 0),
            0xca => (4, 0),
            0xcb => (8, 0),
            0xcc | 0xd0 => (1, 0),
            0xcd | 0xd1 => (2, 0),
            0xce | 0xd2 => (4, 0),
            0xcf | 0xd3 => (8, 0),
            0xd4 => (2, 0),
            0xd5 => (3, 0),
            0xd6 => (5, 0),
            0xd7 => (9, 0),
            0xd8 => (17, 0),
            0xdc => (0, self.len_of(2)?),
            0xdd => (0, self.len_of(4)?),
            0xde => (0, 2 * self.len_of(2)?),
            0xdf => (0, 2 * self.len_of(4)?),
        };
        self.take(skip_bytes)?;
        for _ in 0..children {
            self.skip_depth(depth + 1)?;
        }
        Ok(())
    }
}

/// msgspec's encoding choices: shortest int forms, f64 floats, fixstr/str8/16/32, bin8/16/32.
pub(super) mod write {
    pub(in crate::events) fn nil(buf: &mut Vec<u8>) {
        buf.push(0xc0);
    }

    pub(in crate::events) fn f64(buf: &mut Vec<u8>, value: f64) {
        buf.push(0xcb);
        buf.extend_from_slice(&value.to_be_bytes());
    }

    #[inline]
    pub(in crate::events) fn uint(buf: &mut Vec<u8>, value: u64) {
        if value < 0x80 {
            buf.push(value as u8);
        } else if value <= 0xff {
            buf.extend_from_slice(&[0xcc, value as u8]);
        } else if value <= 0xffff {
            buf.push(0xcd);
            buf.extend_from_slice(&(value as u16).to_be_bytes());
        } else if value <= 0xffff_ffff {
            buf.push(0xce);
            buf.extend_from_slice(&(value as u32).to_be_bytes());
        } else {
            buf.push(0xcf);
            buf.extend_from_slice(&value.to_be_bytes());
        }
    }

    pub(in crate::events) fn int(buf: &mut Vec<u8>, value: i64) {
        if value >= 0 {
            uint(buf, value as u64);
        } else if value >= -32 {
            buf.push(value as i8 as u8);
        } else if value >= i64::from(i8::MIN) {
            buf.extend_from_slice(&[0xd0, value as i8 as u8]);
        } else if value >= i64::from(i16::MIN) {
            buf.push(0xd1);
            buf.extend_from_slice(&(value as i16).to_be_bytes());
        } else if value >= i64::from(i32::MIN) {
            buf.push(0xd2);
            buf.extend_from_slice(&(value as i32).to_be_bytes());
        } else {
            buf.push(0xd3);
            buf.extend_from_slice(&value.to_be_bytes());
        }
    }

    pub(in crate::events) fn str(buf: &mut Vec<u8>, text: &str) {
        let len = text.len();
        if len < 32 {
            buf.push(0xa0 | len as u8);
        } else if len <= 0xff {
            buf.extend_from_slice(&[0xd9, len as u8]);
        } else if len <= 0xffff {
            buf.push(0xda);
            buf.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            buf.push(0xdb);
            buf.extend_from_slice(&(len as u32).to_be_bytes());
        }
        buf.extend_from_slice(text.as_bytes());
    }

    pub(in crate::events) fn bin(buf: &mut Vec<u8>, bytes: &[u8]) {
        let len = bytes.len();
        if len <= 0xff {
            buf.extend_from_slice(&[0xc4, len as u8]);
        } else if len <= 0xffff {
            buf.push(0xc5);
            buf.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            buf.push(0xc6);
            buf.extend_from_slice(&(len as u32).to_be_bytes());
        }
        buf.extend_from_slice(bytes);
    }

    pub(in crate::events) fn array_len(buf: &mut Vec<u8>, len: usize) {
        if len < 16 {
            buf.push(0x90 | len as u8);
        } else if len <= 0xffff {
            buf.push(0xdc);
            buf.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            buf.push(0xdd);
            buf.extend_from_slice(&(len as u32).to_be_bytes());
        }
    }

    pub(in crate::events) fn fixmap_len(buf: &mut Vec<u8>, len: usize) {
        debug_assert!(len < 16);
        buf.push(0x80 | (len as u8 & 0x0f));
    }

    pub(in crate::events) fn map16_len(buf: &mut Vec<u8>, len: usize) {
        buf.push(0xde);
        buf.extend_from_slice(&(len as u16).to_be_bytes());
    }
}
