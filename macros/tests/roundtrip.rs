//! `to_item`/`from_item` are lossless for every prost field kind, and `from_item` turns any
//! malformed item into an error, never a panic. Cases come from a seeded generator, so every
//! run checks the same few thousand values.

use std::collections::{BTreeMap, HashMap};

use svcgen_runtime::{AttributeValue, Entity, Item};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum Colour {
    Unspecified = 0,
    Red = 1,
    Green = 2,
}

// prost-build generates these for every enum; the derive stores enums by these names.
impl Colour {
    pub fn as_str_name(&self) -> &'static str {
        match self {
            Self::Unspecified => "COLOUR_UNSPECIFIED",
            Self::Red => "Red",
            Self::Green => "Green",
        }
    }
    pub fn from_str_name(name: &str) -> Option<Self> {
        match name {
            "COLOUR_UNSPECIFIED" => Some(Self::Unspecified),
            "Red" => Some(Self::Red),
            "Green" => Some(Self::Green),
            _ => None,
        }
    }
}

#[derive(Clone, PartialEq, prost::Message, svcgen_runtime::Attributes)]
pub struct Inner {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(sint64, repeated, tag = "2")]
    pub numbers: Vec<i64>,
    #[prost(message, optional, boxed, tag = "3")]
    pub child: Option<Box<Inner>>,
}

#[derive(Clone, PartialEq, prost::Oneof, svcgen_runtime::Attributes)]
pub enum Choice {
    #[prost(string, tag = "30")]
    Text(String),
    #[prost(message, tag = "31")]
    Nested(Inner),
    #[prost(enumeration = "Colour", tag = "32")]
    Paint(i32),
}

#[derive(Clone, PartialEq, prost::Message, svcgen_runtime::Entity)]
#[entity(
    table = "things",
    pk = "OWNER#{owner}",
    sk = "THING#{colour}#{serial}",
    index(name = "gsi1", pk = "LABEL#{label}", sk = "THING#{serial}"),
    version = "version",
    ttl = "expire_time",
    generated_id = "owner"
)]
pub struct Thing {
    #[prost(string, tag = "1")]
    pub owner: String,
    #[prost(uint64, tag = "2")]
    pub serial: u64,
    #[prost(enumeration = "Colour", tag = "3")]
    pub colour: i32,
    #[prost(string, tag = "4")]
    pub label: String,
    #[prost(bool, tag = "5")]
    pub flag: bool,
    #[prost(int32, tag = "6")]
    pub small: i32,
    #[prost(int64, tag = "7")]
    pub big: i64,
    #[prost(uint32, tag = "8")]
    pub unsigned: u32,
    #[prost(sint32, tag = "9")]
    pub zigzag: i32,
    #[prost(fixed64, tag = "10")]
    pub fixed: u64,
    #[prost(sfixed32, tag = "11")]
    pub sfixed: i32,
    #[prost(float, tag = "12")]
    pub ratio: f32,
    #[prost(double, tag = "13")]
    pub precise: f64,
    #[prost(bytes = "vec", tag = "14")]
    pub blob: Vec<u8>,
    #[prost(string, optional, tag = "15")]
    pub nickname: Option<String>,
    #[prost(enumeration = "Colour", optional, tag = "16")]
    pub maybe_colour: Option<i32>,
    #[prost(message, optional, tag = "17")]
    pub inner: Option<Inner>,
    #[prost(string, repeated, tag = "18")]
    pub tags: Vec<String>,
    #[prost(bytes = "vec", repeated, tag = "19")]
    pub chunks: Vec<Vec<u8>>,
    #[prost(enumeration = "Colour", repeated, tag = "20")]
    pub palette: Vec<i32>,
    #[prost(message, repeated, tag = "21")]
    pub inners: Vec<Inner>,
    #[prost(map = "string, int32", tag = "22")]
    pub counts: HashMap<String, i32>,
    #[prost(map = "uint32, message", tag = "23")]
    pub by_id: HashMap<u32, Inner>,
    #[prost(btree_map = "bool, enumeration(Colour)", tag = "24")]
    pub by_flag: BTreeMap<bool, i32>,
    #[prost(message, optional, tag = "25")]
    pub expire_time: Option<prost_types::Timestamp>,
    #[prost(uint64, tag = "26")]
    pub version: u64,
    #[prost(oneof = "Choice", tags = "30, 31, 32")]
    pub choice: Option<Choice>,
}

/// A message of a oneof alone: the derive reads it without a cursor (clippy's `-D warnings`
/// run over this file catches an unused one).
#[derive(Clone, PartialEq, prost::Message, svcgen_runtime::Attributes)]
pub struct OnlyChoice {
    #[prost(oneof = "Choice", tags = "30, 31, 32")]
    pub choice: Option<Choice>,
}

/// xorshift64*: deterministic, dependency-free case generation.
struct Cases(u64);

impl Cases {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn coin(&mut self) -> bool {
        self.below(2) == 0
    }
    fn string(&mut self) -> String {
        let alphabet = [
            "", "a", "Z", "#", "ü", "日本", "\u{0}", " ", "PROJECT#", "🦀",
        ];
        (0..self.below(4))
            .map(|_| alphabet[self.below(alphabet.len() as u64) as usize])
            .collect()
    }
    fn bytes(&mut self) -> Vec<u8> {
        (0..self.below(5)).map(|_| self.next() as u8).collect()
    }
    fn float(&mut self) -> f64 {
        let specials = [
            0.0,
            -0.0,
            1.5,
            -2.5e-300,
            1e300,
            f64::MAX,
            f64::MIN_POSITIVE,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ];
        if self.coin() {
            specials[self.below(specials.len() as u64) as usize]
        } else {
            f64::from_bits(self.next())
        }
    }
    fn colour(&mut self) -> i32 {
        [0, 1, 2, 7][self.below(4) as usize]
    }
    fn inner(&mut self, depth: u32) -> Inner {
        Inner {
            name: self.string(),
            numbers: (0..self.below(3)).map(|_| self.next() as i64).collect(),
            child: (depth < 2 && self.coin()).then(|| Box::new(self.inner(depth + 1))),
        }
    }
    fn thing(&mut self) -> Thing {
        Thing {
            owner: format!("o{}", self.below(100)),
            serial: self.below(1000) + 1,
            colour: [1, 2][self.below(2) as usize],
            label: self.string(),
            flag: self.coin(),
            small: self.next() as i32,
            big: self.next() as i64,
            unsigned: self.next() as u32,
            zigzag: self.next() as i32,
            fixed: self.next(),
            sfixed: self.next() as i32,
            ratio: self.float() as f32,
            precise: self.float(),
            blob: self.bytes(),
            nickname: self.coin().then(|| self.string()),
            maybe_colour: self.coin().then(|| self.colour()),
            inner: self.coin().then(|| self.inner(0)),
            tags: (0..self.below(3)).map(|_| self.string()).collect(),
            chunks: (0..self.below(3)).map(|_| self.bytes()).collect(),
            palette: (0..self.below(3)).map(|_| self.colour()).collect(),
            inners: (0..self.below(2)).map(|_| self.inner(1)).collect(),
            counts: (0..self.below(3))
                .map(|_| (self.string(), self.next() as i32))
                .collect(),
            by_id: (0..self.below(2))
                .map(|_| (self.next() as u32, self.inner(1)))
                .collect(),
            by_flag: (0..self.below(2))
                .map(|_| (self.coin(), self.colour()))
                .collect(),
            expire_time: self.coin().then(|| prost_types::Timestamp {
                seconds: (self.below(4_000_000_000)) as i64,
                nanos: self.below(1_000_000_000) as i32,
            }),
            version: self.below(10),
            choice: match self.below(4) {
                0 => None,
                1 => Some(Choice::Text(self.string())),
                2 => Some(Choice::Nested(self.inner(0))),
                _ => Some(Choice::Paint(self.colour())),
            },
        }
    }
}

/// Equality with floats compared bit for bit, except that any NaN equals any NaN (NaN
/// payloads are not kept, as in protobuf's JSON mapping).
fn same(a: &Thing, b: &Thing) -> bool {
    let float_eq = |x: f64, y: f64| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan());
    let mut a2 = a.clone();
    let mut b2 = b.clone();
    (a2.ratio, a2.precise, b2.ratio, b2.precise) = (0.0, 0.0, 0.0, 0.0);
    a2 == b2 && float_eq(a.ratio.into(), b.ratio.into()) && float_eq(a.precise, b.precise)
}

#[test]
fn every_field_kind_round_trips() {
    let mut cases = Cases(0x5eed);
    for _ in 0..3000 {
        let thing = cases.thing();
        let item = thing.to_item().expect("keys are set");
        let back = Thing::from_item(&item).expect("decodes");
        assert!(same(&thing, &back), "{thing:?}\n{item:?}\n{back:?}");
    }
}

#[test]
fn keys_and_index_attributes_come_from_the_templates() {
    let thing = Thing {
        owner: "ada".into(),
        serial: 42,
        colour: Colour::Green as i32,
        label: "x".into(),
        ..Default::default()
    };
    let item = thing.to_item().expect("keys");
    let s = |v: &str| AttributeValue::S(v.to_owned());
    assert_eq!(item["pk"], s("OWNER#ada"));
    assert_eq!(item["sk"], s("THING#Green#00000000000000000042"));
    assert_eq!(item["gsi1pk"], s("LABEL#x"));
    assert_eq!(item["gsi1sk"], s("THING#00000000000000000042"));

    let escaped = Thing {
        owner: "N#a%b/\0é".into(),
        ..thing.clone()
    };
    assert_eq!(
        escaped.to_item().expect("keys")["pk"],
        s("OWNER#N%23a%25b%2F%00é"),
        "values are percent-encoded into keys"
    );

    let unlabelled = Thing {
        label: String::new(),
        ..thing.clone()
    };
    assert!(
        !unlabelled.to_item().expect("keys").contains_key("gsi1pk"),
        "sparse index"
    );
    let missing = Thing {
        owner: String::new(),
        ..thing
    };
    let error = missing.to_item().expect_err("owner is a key field");
    assert_eq!(
        error.to_string(),
        "`owner` is required: it is part of the Thing key"
    );
}

#[test]
fn field_names_list_oneof_members_as_masks_name_them() {
    let names = Thing::field_names();
    assert!(names.contains(&"text") && names.contains(&"paint") && names.contains(&"expire_time"));
    assert!(!names.contains(&"choice"), "a oneof is not a field");
    assert_eq!(Thing::oneof_members(), [&["text", "nested", "paint"][..]]);
}

#[test]
fn a_message_of_a_oneof_alone_round_trips() {
    use svcgen_runtime::{Attributes, ItemRef};
    let message = OnlyChoice {
        choice: Some(Choice::Text("hello".into())),
    };
    let mut item = Item::new();
    message.write_attributes(&mut item);
    assert_eq!(
        OnlyChoice::read_attributes(&ItemRef::of(&item)),
        Ok(message)
    );
}

#[test]
fn defaults_are_not_stored_and_old_items_read_as_defaults() {
    let thing = Thing {
        owner: "a".into(),
        serial: 1,
        colour: 1,
        ..Default::default()
    };
    let item = thing.to_item().expect("keys");
    let stored: Vec<&str> = item.keys().map(String::as_str).collect();
    assert_eq!(
        stored,
        ["colour", "owner", "pk", "serial", "sk", "svcgen_entity"]
    );
    assert_eq!(item["svcgen_entity"], AttributeValue::S("Thing".into()));

    let mut old: Item = item.clone();
    old.insert("field_from_the_future".into(), AttributeValue::Bool(true));
    old.remove("colour");
    let read = Thing::from_item(&old).expect("unknown attributes are ignored");
    assert_eq!(read.colour, 0);
}

/// Any attribute value, including ones no writer produces.
fn arbitrary_value(cases: &mut Cases, depth: u32) -> AttributeValue {
    match cases.below(if depth > 2 { 5 } else { 7 }) {
        0 => AttributeValue::S(cases.string()),
        1 => AttributeValue::N(
            ["1", "-1", "1e400", "x", "", "99999999999999999999", "0.5"][cases.below(7) as usize]
                .into(),
        ),
        2 => AttributeValue::B(cases.bytes()),
        3 => AttributeValue::Bool(cases.coin()),
        4 => AttributeValue::Null,
        5 => AttributeValue::L(
            (0..cases.below(3))
                .map(|_| arbitrary_value(cases, depth + 1))
                .collect(),
        ),
        _ => AttributeValue::M(
            (0..cases.below(4))
                .map(|_| (field_name(cases), arbitrary_value(cases, depth + 1)))
                .collect(),
        ),
    }
}

fn field_name(cases: &mut Cases) -> String {
    let names = [
        "owner",
        "serial",
        "colour",
        "label",
        "flag",
        "small",
        "big",
        "ratio",
        "precise",
        "blob",
        "nickname",
        "maybe_colour",
        "inner",
        "tags",
        "chunks",
        "palette",
        "inners",
        "counts",
        "by_id",
        "by_flag",
        "expire_time",
        "text",
        "nested",
        "paint",
        "name",
        "numbers",
        "child",
        "junk",
    ];
    names[cases.below(names.len() as u64) as usize].to_owned()
}

#[test]
fn from_item_never_panics_on_malformed_items() {
    let mut cases = Cases(0xbad);
    let mut errors = 0;
    for round in 0..20_000 {
        let mut item: Item = (0..cases.below(6))
            .map(|_| (field_name(&mut cases), arbitrary_value(&mut cases, 0)))
            .collect();
        if round % 2 == 0 {
            // Start from a valid item and corrupt one attribute.
            item = cases.thing().to_item().expect("keys");
            let name = field_name(&mut cases);
            item.insert(name, arbitrary_value(&mut cases, 0));
        }
        if Thing::from_item(&item).is_err() {
            errors += 1;
        }
    }
    assert!(
        errors > 1000,
        "the generator produces malformed items ({errors} errors)"
    );
}
