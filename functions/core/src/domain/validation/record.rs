//! Shape-tolerant, borrowing views of one dataset line.
//!
//! serde's derived `Deserialize` stops at the first type mismatch with a message about Rust types. The
//! types here instead accept *any* JSON value and record what they found (the string, or "a number"), so
//! the rules in `rules.rs` can name the exact field and every problem on the line. Strings borrow from the
//! line (`Cow::Borrowed`) unless they contain escapes, so a typical record allocates only its small vectors.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// The kind of a JSON value, for "expected a string, found a number" messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JsonType {
    Null,
    Bool,
    Number,
    String,
    Array,
    Object,
}

impl JsonType {
    pub(crate) fn described(self) -> &'static str {
        match self {
            JsonType::Null => "null",
            JsonType::Bool => "a boolean",
            JsonType::Number => "a number",
            JsonType::String => "a string",
            JsonType::Array => "an array",
            JsonType::Object => "an object",
        }
    }
}

/// A value of the expected shape `T`, or the kind of value found instead.
#[derive(Debug)]
pub(crate) enum Shaped<T> {
    Ok(T),
    Wrong(JsonType),
}

/// Implements the visitor methods for every JSON kind the visitor does not expect: each yields
/// `Shaped::Wrong(kind)` after skipping the value, so deserialisation itself never fails on shape.
macro_rules! wrong_kinds {
    (scalars) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok(Shaped::Wrong(JsonType::Bool))
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok(Shaped::Wrong(JsonType::Number))
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok(Shaped::Wrong(JsonType::Number))
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok(Shaped::Wrong(JsonType::Number))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Shaped::Wrong(JsonType::Null))
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Shaped::Wrong(JsonType::Null))
        }
    };
    (str) => {
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok(Shaped::Wrong(JsonType::String))
        }
    };
    (seq) => {
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(Shaped::Wrong(JsonType::Array))
        }
    };
    (map) => {
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            Ok(Shaped::Wrong(JsonType::Object))
        }
    };
}

/// Where a string is expected.
pub(crate) type Str<'a> = Shaped<Cow<'a, str>>;

impl<'de: 'a, 'a> Deserialize<'de> for Shaped<Cow<'a, str>> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Shaped<Cow<'de, str>>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Shaped::Ok(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Shaped::Ok(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Shaped::Ok(Cow::Owned(v)))
            }
            wrong_kinds!(scalars);
            wrong_kinds!(seq);
            wrong_kinds!(map);
        }
        d.deserialize_any(V)
    }
}

/// Where an array is expected.
impl<'de, T: Deserialize<'de>> Deserialize<'de> for Shaped<Vec<T>> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Shaped<Vec<T>>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                // Records hold one to a few items; a modest cap keeps a hostile size hint harmless.
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(2).min(16));
                while let Some(item) = seq.next_element::<T>()? {
                    items.push(item);
                }
                Ok(Shaped::Ok(items))
            }
            wrong_kinds!(scalars);
            wrong_kinds!(str);
            wrong_kinds!(map);
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// A key of an object: one of the names the schema knows, or another one (kept for the message).
enum Key {
    Known(usize),
    Other(String),
}

struct KeyVisitor<const N: usize>(&'static [&'static str; N]);

impl<'de, const N: usize> Visitor<'de> for KeyVisitor<N> {
    type Value = Key;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(match self.0.iter().position(|k| *k == v) {
            Some(i) => Key::Known(i),
            None => Key::Other(v.to_owned()),
        })
    }
}

impl<'de, const N: usize> de::DeserializeSeed<'de> for KeyVisitor<N> {
    type Value = Key;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

/// Keys that were not expected or appeared twice, common to every object in the schema.
#[derive(Debug, Default)]
pub(crate) struct KeyProblems {
    /// Unknown keys, in order of appearance (the first few; the rules report each).
    pub unknown: Vec<String>,
    /// Keys given more than once (JSON parsers disagree on which one wins, so it is an error).
    pub duplicate: Vec<&'static str>,
}

impl KeyProblems {
    fn unknown(&mut self, key: String) {
        // Bounded: a line with thousands of junk keys still yields a short report.
        if self.unknown.len() < 8 {
            self.unknown.push(key);
        }
    }
    fn set_once<T>(&mut self, slot: &mut Option<T>, value: T, name: &'static str) {
        if slot.is_some() {
            self.duplicate.push(name);
        }
        *slot = Some(value);
    }
}

/// `{"text": string}`, optionally with `"type"` (tolerated, as AWS's own validator does).
#[derive(Debug, Default)]
pub(crate) struct TextBlock<'a> {
    pub text: Option<Str<'a>>,
    pub kind: Option<Str<'a>>,
    pub keys: KeyProblems,
}

const TEXT_BLOCK_KEYS: [&str; 2] = ["text", "type"];

impl<'de: 'a, 'a> Deserialize<'de> for Shaped<TextBlock<'a>> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Shaped<TextBlock<'de>>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut block = TextBlock::default();
                while let Some(key) = map.next_key_seed(KeyVisitor(&TEXT_BLOCK_KEYS))? {
                    match key {
                        Key::Known(0) => {
                            let v = map.next_value()?;
                            block.keys.set_once(&mut block.text, v, "text");
                        }
                        Key::Known(_) => {
                            let v = map.next_value()?;
                            block.keys.set_once(&mut block.kind, v, "type");
                        }
                        Key::Other(k) => {
                            block.keys.unknown(k);
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(Shaped::Ok(block))
            }
            wrong_kinds!(scalars);
            wrong_kinds!(str);
            wrong_kinds!(seq);
        }
        d.deserialize_any(V)
    }
}

/// `{"role": ..., "content": [...]}`.
#[derive(Debug, Default)]
pub(crate) struct Message<'a> {
    pub role: Option<Str<'a>>,
    pub content: Option<Shaped<Vec<Shaped<TextBlock<'a>>>>>,
    pub keys: KeyProblems,
}

const MESSAGE_KEYS: [&str; 2] = ["role", "content"];

impl<'de: 'a, 'a> Deserialize<'de> for Shaped<Message<'a>> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Shaped<Message<'de>>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut msg = Message::default();
                while let Some(key) = map.next_key_seed(KeyVisitor(&MESSAGE_KEYS))? {
                    match key {
                        Key::Known(0) => {
                            let v = map.next_value()?;
                            msg.keys.set_once(&mut msg.role, v, "role");
                        }
                        Key::Known(_) => {
                            let v = map.next_value()?;
                            msg.keys.set_once(&mut msg.content, v, "content");
                        }
                        Key::Other(k) => {
                            msg.keys.unknown(k);
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(Shaped::Ok(msg))
            }
            wrong_kinds!(scalars);
            wrong_kinds!(str);
            wrong_kinds!(seq);
        }
        d.deserialize_any(V)
    }
}

/// One line: `{"schemaVersion", "system"?, "messages"}`.
#[derive(Debug, Default)]
pub(crate) struct Record<'a> {
    pub schema_version: Option<Str<'a>>,
    pub system: Option<Shaped<Vec<Shaped<TextBlock<'a>>>>>,
    pub messages: Option<Shaped<Vec<Shaped<Message<'a>>>>>,
    pub keys: KeyProblems,
}

pub(crate) const RECORD_KEYS: [&str; 3] = ["schemaVersion", "system", "messages"];

impl<'de: 'a, 'a> Deserialize<'de> for Shaped<Record<'a>> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Shaped<Record<'de>>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut rec = Record::default();
                while let Some(key) = map.next_key_seed(KeyVisitor(&RECORD_KEYS))? {
                    match key {
                        Key::Known(0) => {
                            let v = map.next_value()?;
                            rec.keys
                                .set_once(&mut rec.schema_version, v, "schemaVersion");
                        }
                        Key::Known(1) => {
                            let v = map.next_value()?;
                            rec.keys.set_once(&mut rec.system, v, "system");
                        }
                        Key::Known(_) => {
                            let v = map.next_value()?;
                            rec.keys.set_once(&mut rec.messages, v, "messages");
                        }
                        Key::Other(k) => {
                            rec.keys.unknown(k);
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(Shaped::Ok(rec))
            }
            wrong_kinds!(scalars);
            wrong_kinds!(str);
            wrong_kinds!(seq);
        }
        d.deserialize_any(V)
    }
}

/// Parses one line (already checked to be UTF-8). A syntax error is the only failure.
pub(crate) fn parse_record(line: &str) -> Result<Shaped<Record<'_>>, serde_json::Error> {
    serde_json::from_str(line)
}
