//! The protobuf wire format, read without building a message: tags, varints and field values
//! as borrowed slices of the payload.
//!
//! The reader is deliberately strict and small. Anything it does not handle (groups, wire types
//! 6 and 7, truncation, over-long varints, field number 0) is [`Malformed`], and callers then
//! take the `DynamicMessage` path, which either accepts the input or produces the precise error
//! text clients already see.

/// The payload is not something this reader handles; the caller falls back to prost-reflect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Malformed;

/// One field value as it sits on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WireValue<'a> {
    /// Wire type 0.
    Varint(u64),
    /// Wire type 1 (`double`, `fixed64`, `sfixed64`).
    Fixed64(u64),
    /// Wire type 5 (`float`, `fixed32`, `sfixed32`).
    Fixed32(u32),
    /// Wire type 2: strings, bytes, messages and packed repeated scalars.
    Len(&'a [u8]),
}

/// Reads fields one by one from an encoded message.
pub(crate) struct WireReader<'a> {
    buf: &'a [u8],
}

impl<'a> WireReader<'a> {
    /// A reader over one encoded message (or one packed run).
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    /// True once every byte has been consumed.
    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The next field number and value; `None` at the end of the message.
    pub(crate) fn field(&mut self) -> Result<Option<(u32, WireValue<'a>)>, Malformed> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let number = u32::try_from(key >> 3).map_err(|_| Malformed)?;
        if number == 0 {
            return Err(Malformed);
        }
        let value = match key & 7 {
            0 => WireValue::Varint(self.varint()?),
            1 => WireValue::Fixed64(self.fixed64()?),
            2 => {
                let len = usize::try_from(self.varint()?).map_err(|_| Malformed)?;
                WireValue::Len(self.take(len)?)
            }
            5 => WireValue::Fixed32(self.fixed32()?),
            // Groups (3, 4) are proto2 legacy; 6 and 7 are invalid.
            _ => return Err(Malformed),
        };
        Ok(Some((number, value)))
    }

    /// A base-128 varint of at most ten bytes whose value fits 64 bits.
    pub(crate) fn varint(&mut self) -> Result<u64, Malformed> {
        // One-byte varints (small numbers, most tags) skip the loop.
        if let Some(&b) = self.buf.first()
            && b < 0x80
        {
            self.buf = &self.buf[1..];
            return Ok(u64::from(b));
        }
        let mut value = 0u64;
        for (i, &b) in self.buf.iter().enumerate().take(10) {
            // The tenth byte may only carry the single top bit of a u64.
            if i == 9 && b > 1 {
                return Err(Malformed);
            }
            value |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                self.buf = &self.buf[i + 1..];
                return Ok(value);
            }
        }
        Err(Malformed)
    }

    /// A little-endian 64-bit value.
    pub(crate) fn fixed64(&mut self) -> Result<u64, Malformed> {
        let bytes = self.take(8)?;
        let array: [u8; 8] = bytes.try_into().map_err(|_| Malformed)?;
        Ok(u64::from_le_bytes(array))
    }

    /// A little-endian 32-bit value.
    pub(crate) fn fixed32(&mut self) -> Result<u32, Malformed> {
        let bytes = self.take(4)?;
        let array: [u8; 4] = bytes.try_into().map_err(|_| Malformed)?;
        Ok(u32::from_le_bytes(array))
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], Malformed> {
        if len > self.buf.len() {
            return Err(Malformed);
        }
        let (head, tail) = self.buf.split_at(len);
        self.buf = tail;
        Ok(head)
    }
}

/// Decodes a zigzag-encoded `sint32`.
pub(crate) fn zigzag32(v: u32) -> i32 {
    ((v >> 1) as i32) ^ -((v & 1) as i32)
}

/// Decodes a zigzag-encoded `sint64`.
pub(crate) fn zigzag64(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}
