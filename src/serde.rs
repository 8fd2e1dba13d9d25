//! Any `serde::Serialize` value as a property, serialized straight into the lane: no
//! allocation, no intermediate JSON (the `serde` feature).
//!
//! ```
//! use fasthog::{Event, Serde};
//! #[derive(serde::Serialize)]
//! struct Cart<'a> { items: &'a [&'a str], total: f64 }
//! let cart = Cart { items: &["book", "pen"], total: 12.5 };
//! let e = Event::new("checkout", "user-1").prop("cart", Serde(&cart));
//! # let _ = e;
//! ```
//!
//! The mapping is serde_json's: structs and maps are objects (map keys must be strings,
//! numbers, `bool` or `char`: they become strings), sequences and tuples are arrays, `None`
//! and `()` are `null`, enum variants are externally tagged, bytes are arrays of numbers.
//! What does not fit the event's limit is cut or dropped and counted, as for any property.

use serde::ser::{self, Serialize};

use crate::entry::EntryWriter;
use crate::event::PropValue;

/// A `Serialize` value as a property value: `.prop("cart", Serde(&cart))`.
#[derive(Debug, Clone, Copy)]
pub struct Serde<'t, T: ?Sized>(pub &'t T);

impl<T: Serialize + ?Sized> PropValue for Serde<'_, T> {
    fn write_value(&self, w: &mut EntryWriter<'_>) -> bool {
        self.0.serialize(Writer { w }).is_ok()
    }
}

#[cfg(feature = "serde_json")]
impl PropValue for serde_json::Value {
    fn write_value(&self, w: &mut EntryWriter<'_>) -> bool {
        Serde(self).write_value(w)
    }
}

/// Why serializing stopped: the value did not fit (it is then dropped and counted), or the
/// type refused (a map key that is not a string or number).
#[derive(Debug)]
pub(crate) struct Error;

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("the value does not fit the event, or cannot be a JSON property")
    }
}

impl ser::StdError for Error {}

impl ser::Error for Error {
    fn custom<T: core::fmt::Display>(_: T) -> Self {
        Error
    }
}

fn ok(written: bool) -> Result<(), Error> {
    if written {
        Ok(())
    } else {
        Err(Error)
    }
}

struct Writer<'w, 'b> {
    w: &'w mut EntryWriter<'b>,
}

/// An array or object being written. `open` is false when it could not be started (no room,
/// or nesting too deep): its members are then skipped, and it was written as `null`.
struct Compound<'w, 'b> {
    w: &'w mut EntryWriter<'b>,
    open: bool,
    /// `{variant: ...}` around it: one more `end`.
    tagged: bool,
    /// A map key written, waiting for its value: where the member started.
    member: Option<usize>,
}

impl<'w, 'b> Writer<'w, 'b> {
    fn compound(self, object: bool, variant: Option<&'static str>) -> Result<Compound<'w, 'b>, Error> {
        let w = self.w;
        let mut tagged = false;
        if let Some(name) = variant {
            if !w.begin(true) {
                ok(w.null())?;
                return Ok(Compound { w, open: false, tagged: false, member: None });
            }
            if w.key(name).is_none() {
                w.end();
                return Err(Error);
            }
            tagged = true;
        }
        let open = w.begin(object);
        if !open {
            ok(w.null())?;
        }
        Ok(Compound { w, open, tagged, member: None })
    }

    fn tagged(self, variant: &'static str, value: &(impl Serialize + ?Sized)) -> Result<(), Error> {
        let w = self.w;
        if !w.begin(true) {
            return ok(w.null());
        }
        if let Some(at) = w.key(variant) {
            let written = value.serialize(Writer { w: &mut *w }).is_ok();
            w.end_member(at, written);
        }
        w.end();
        Ok(())
    }
}

impl<'w, 'b> ser::Serializer for Writer<'w, 'b> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Compound<'w, 'b>;
    type SerializeTuple = Compound<'w, 'b>;
    type SerializeTupleStruct = Compound<'w, 'b>;
    type SerializeTupleVariant = Compound<'w, 'b>;
    type SerializeMap = Compound<'w, 'b>;
    type SerializeStruct = Compound<'w, 'b>;
    type SerializeStructVariant = Compound<'w, 'b>;

    fn serialize_bool(self, v: bool) -> Result<(), Error> {
        ok(self.w.bool(v))
    }
    fn serialize_i8(self, v: i8) -> Result<(), Error> {
        ok(self.w.i64(v.into()))
    }
    fn serialize_i16(self, v: i16) -> Result<(), Error> {
        ok(self.w.i64(v.into()))
    }
    fn serialize_i32(self, v: i32) -> Result<(), Error> {
        ok(self.w.i64(v.into()))
    }
    fn serialize_i64(self, v: i64) -> Result<(), Error> {
        ok(self.w.i64(v))
    }
    fn serialize_i128(self, v: i128) -> Result<(), Error> {
        match (i64::try_from(v), u64::try_from(v)) {
            (Ok(i), _) => ok(self.w.i64(i)),
            (_, Ok(u)) => ok(self.w.u64(u)),
            _ => ok(self.w.f64(v as f64)),
        }
    }
    fn serialize_u8(self, v: u8) -> Result<(), Error> {
        ok(self.w.u64(v.into()))
    }
    fn serialize_u16(self, v: u16) -> Result<(), Error> {
        ok(self.w.u64(v.into()))
    }
    fn serialize_u32(self, v: u32) -> Result<(), Error> {
        ok(self.w.u64(v.into()))
    }
    fn serialize_u64(self, v: u64) -> Result<(), Error> {
        ok(self.w.u64(v))
    }
    fn serialize_u128(self, v: u128) -> Result<(), Error> {
        match u64::try_from(v) {
            Ok(u) => ok(self.w.u64(u)),
            Err(_) => ok(self.w.f64(v as f64)),
        }
    }
    fn serialize_f32(self, v: f32) -> Result<(), Error> {
        ok(self.w.f64(v.into()))
    }
    fn serialize_f64(self, v: f64) -> Result<(), Error> {
        ok(self.w.f64(v))
    }
    fn serialize_char(self, v: char) -> Result<(), Error> {
        ok(self.w.str(v.encode_utf8(&mut [0; 4])))
    }
    fn serialize_str(self, v: &str) -> Result<(), Error> {
        ok(self.w.str(v))
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), Error> {
        let mut seq = self.compound(false, None)?;
        for b in v {
            ser::SerializeSeq::serialize_element(&mut seq, b)?;
        }
        ser::SerializeSeq::end(seq)
    }
    fn serialize_none(self) -> Result<(), Error> {
        ok(self.w.null())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Error> {
        ok(self.w.null())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Error> {
        ok(self.w.null())
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> Result<(), Error> {
        ok(self.w.str(variant))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.tagged(variant, value)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Compound<'w, 'b>, Error> {
        self.compound(false, None)
    }
    fn serialize_tuple(self, _: usize) -> Result<Compound<'w, 'b>, Error> {
        self.compound(false, None)
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Compound<'w, 'b>, Error> {
        self.compound(false, None)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Compound<'w, 'b>, Error> {
        self.compound(false, Some(variant))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Compound<'w, 'b>, Error> {
        self.compound(true, None)
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Compound<'w, 'b>, Error> {
        self.compound(true, None)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Compound<'w, 'b>, Error> {
        self.compound(true, Some(variant))
    }
    fn collect_str<T: core::fmt::Display + ?Sized>(self, value: &T) -> Result<(), Error> {
        // Display output is written in pieces: collect what fits a small stack buffer.
        let mut buf = StackStr { bytes: [0; 256], len: 0 };
        let _ = core::fmt::write(&mut buf, format_args!("{value}"));
        ok(self.w.str(buf.as_str()))
    }
}

/// A string of at most 256 bytes on the stack, cut on a char boundary.
struct StackStr {
    bytes: [u8; 256],
    len: usize,
}

impl StackStr {
    fn as_str(&self) -> &str {
        core::str::from_utf8(&self.bytes[..self.len]).unwrap_or_default()
    }
}

impl core::fmt::Write for StackStr {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let room = self.bytes.len() - self.len;
        let mut n = s.len().min(room);
        while !s.is_char_boundary(n) {
            n -= 1;
        }
        self.bytes[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

impl Compound<'_, '_> {
    fn element(&mut self, value: &(impl Serialize + ?Sized)) -> Result<(), Error> {
        if !self.open {
            self.w.count_dropped();
            return Ok(());
        }
        let at = self.w.mark();
        let written = value.serialize(Writer { w: &mut *self.w }).is_ok();
        self.w.end_member(at, written);
        Ok(())
    }

    fn field(&mut self, key: &str, value: &(impl Serialize + ?Sized)) -> Result<(), Error> {
        if !self.open {
            self.w.count_dropped();
            return Ok(());
        }
        if let Some(at) = self.w.key(key) {
            let written = value.serialize(Writer { w: &mut *self.w }).is_ok();
            self.w.end_member(at, written);
        }
        Ok(())
    }

    fn close(self) -> Result<(), Error> {
        if self.open {
            self.w.end();
        }
        if self.tagged {
            self.w.end();
        }
        Ok(())
    }
}

impl ser::SerializeSeq for Compound<'_, '_> {
    type Ok = ();
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.element(value)
    }
    fn end(self) -> Result<(), Error> {
        self.close()
    }
}

impl ser::SerializeTuple for Compound<'_, '_> {
    type Ok = ();
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.element(value)
    }
    fn end(self) -> Result<(), Error> {
        self.close()
    }
}

impl ser::SerializeTupleStruct for Compound<'_, '_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.element(value)
    }
    fn end(self) -> Result<(), Error> {
        self.close()
    }
}

impl ser::SerializeTupleVariant for Compound<'_, '_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.element(value)
    }
    fn end(self) -> Result<(), Error> {
        self.close()
    }
}

impl ser::SerializeStruct for Compound<'_, '_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result<(), Error> {
        self.field(key, value)
    }
    fn end(self) -> Result<(), Error> {
        self.close()
    }
}

impl ser::SerializeStructVariant for Compound<'_, '_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result<(), Error> {
        self.field(key, value)
    }
    fn end(self) -> Result<(), Error> {
        self.close()
    }
}

impl ser::SerializeMap for Compound<'_, '_> {
    type Ok = ();
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        self.member = None;
        if !self.open {
            self.w.count_dropped();
            return Ok(());
        }
        let mut text = StackStr { bytes: [0; 256], len: 0 };
        if key.serialize(KeyWriter { out: &mut text }).is_err() {
            self.w.count_dropped();
            return Ok(());
        }
        self.member = self.w.key(text.as_str());
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        if let Some(at) = self.member.take() {
            let written = value.serialize(Writer { w: &mut *self.w }).is_ok();
            self.w.end_member(at, written);
        }
        Ok(())
    }
    fn end(self) -> Result<(), Error> {
        self.close()
    }
}

/// Map keys as JSON has them: strings, and numbers, `bool` and `char` as their text.
struct KeyWriter<'o> {
    out: &'o mut StackStr,
}

impl KeyWriter<'_> {
    fn text(self, args: core::fmt::Arguments<'_>) -> Result<(), Error> {
        core::fmt::write(self.out, args).map_err(|_| Error)
    }
}

macro_rules! key_as_text {
    ($($f:ident: $t:ty),*) => {$(
        fn $f(self, v: $t) -> Result<(), Error> {
            self.text(format_args!("{v}"))
        }
    )*};
}

impl ser::Serializer for KeyWriter<'_> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = ser::Impossible<(), Error>;
    type SerializeTuple = ser::Impossible<(), Error>;
    type SerializeTupleStruct = ser::Impossible<(), Error>;
    type SerializeTupleVariant = ser::Impossible<(), Error>;
    type SerializeMap = ser::Impossible<(), Error>;
    type SerializeStruct = ser::Impossible<(), Error>;
    type SerializeStructVariant = ser::Impossible<(), Error>;

    key_as_text!(serialize_bool: bool, serialize_i8: i8, serialize_i16: i16, serialize_i32: i32,
        serialize_i64: i64, serialize_i128: i128, serialize_u8: u8, serialize_u16: u16,
        serialize_u32: u32, serialize_u64: u64, serialize_u128: u128, serialize_f32: f32,
        serialize_f64: f64, serialize_char: char, serialize_str: &str);

    fn collect_str<T: core::fmt::Display + ?Sized>(self, value: &T) -> Result<(), Error> {
        self.text(format_args!("{value}"))
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<(), Error> {
        Err(Error)
    }
    fn serialize_none(self) -> Result<(), Error> {
        Err(Error)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Error> {
        Err(Error)
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Error> {
        Err(Error)
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> Result<(), Error> {
        self.text(format_args!("{variant}"))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), Error> {
        Err(Error)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Error> {
        Err(Error)
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Error> {
        Err(Error)
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeTupleStruct, Error> {
        Err(Error)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, Error> {
        Err(Error)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Error> {
        Err(Error)
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct, Error> {
        Err(Error)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Error> {
        Err(Error)
    }
}
