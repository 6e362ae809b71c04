//! Strict parsing of `application/x-www-form-urlencoded` data (query strings and form
//! bodies).
//!
//! Stricter than the usual lenient decoders on purpose (security checklist H-P1, H-P3,
//! A10): invalid percent escapes and invalid UTF-8 are errors rather than replacement
//! characters, a repeated parameter is remembered so the caller can refuse it, and an
//! empty value counts as absent (OAuth 2.1 §3.1).

use std::collections::HashMap;

/// Why a urlencoded string could not be parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParamsError {
    #[error("malformed percent-encoding")]
    BadPercentEncoding,
    #[error("parameters are not valid UTF-8")]
    InvalidUtf8,
    #[error("too many parameters")]
    TooMany,
    #[error("the body is not a JSON object")]
    NotJsonObject,
}

/// Parsed parameters: first value of each name, and which names were repeated.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Params {
    values: HashMap<String, String>,
    repeated: Vec<String>,
}

/// More than this many pairs is refused rather than hashed (H-P2).
pub const MAX_PARAMS: usize = 256;

impl Params {
    /// Parses `a=1&b=2`. Pairs with an empty value are dropped (empty counts as absent),
    /// but still count toward repetition.
    pub fn parse(input: &[u8]) -> Result<Self, ParamsError> {
        let mut params = Params::default();
        let mut seen: HashMap<String, ()> = HashMap::new();
        let mut count = 0usize;
        for pair in input.split(|b| *b == b'&') {
            if pair.is_empty() {
                continue;
            }
            count += 1;
            if count > MAX_PARAMS {
                return Err(ParamsError::TooMany);
            }
            let (name, value) = match pair.iter().position(|b| *b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &[][..]),
            };
            let name = decode(name)?;
            let value = decode(value)?;
            if seen.insert(name.clone(), ()).is_some() {
                if !params.repeated.contains(&name) {
                    params.repeated.push(name);
                }
                continue;
            }
            if !value.is_empty() {
                params.values.insert(name, value);
            }
        }
        Ok(params)
    }

    /// Builds parameters from already-decoded pairs (a JSON body's string members).
    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let mut params = Params::default();
        let mut seen = std::collections::HashSet::new();
        for (k, v) in pairs {
            let (k, v) = (k.into(), v.into());
            if !seen.insert(k.clone()) {
                params.mark_repeated(&k);
            } else if !v.is_empty() {
                params.values.insert(k, v);
            }
        }
        params
    }

    /// Reads a JSON object body (the reference's token requests are JSON). String members
    /// become parameters; other scalars their JSON text; objects and arrays are ignored.
    /// A member named twice is remembered as repeated, like a repeated form parameter.
    pub fn from_json(input: &[u8]) -> Result<Self, ParamsError> {
        let pairs: JsonPairs =
            serde_json::from_slice(input).map_err(|_| ParamsError::NotJsonObject)?;
        if pairs.0.len() > MAX_PARAMS {
            return Err(ParamsError::TooMany);
        }
        Ok(Self::from_pairs(pairs.0))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    pub fn is_repeated(&self, name: &str) -> bool {
        self.repeated.iter().any(|n| n == name)
    }

    /// The first of `names` that was sent more than once.
    pub fn first_repeated<'a>(&self, names: &[&'a str]) -> Option<&'a str> {
        names.iter().copied().find(|n| self.is_repeated(n))
    }

    /// Marks `name` as repeated (a parameter sent both in the query and the body).
    pub fn mark_repeated(&mut self, name: &str) {
        if !self.is_repeated(name) {
            self.repeated.push(name.to_owned());
        }
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.values.keys().map(String::as_str)
    }
}

/// A JSON object's members in order, duplicates kept (serde_json's map would drop them).
struct JsonPairs(Vec<(String, String)>);

impl<'de> serde::Deserialize<'de> for JsonPairs {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = JsonPairs;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<JsonPairs, A::Error> {
                let mut pairs = Vec::new();
                while let Some((key, value)) = map.next_entry::<String, serde_json::Value>()? {
                    let text = match value {
                        serde_json::Value::String(s) => s,
                        serde_json::Value::Number(n) => n.to_string(),
                        serde_json::Value::Bool(b) => b.to_string(),
                        _ => continue,
                    };
                    pairs.push((key, text));
                }
                Ok(JsonPairs(pairs))
            }
        }
        d.deserialize_map(Visitor)
    }
}

/// Percent-decodes one name or value (`+` is a space), refusing bad escapes and bad UTF-8.
pub fn decode(input: &[u8]) -> Result<String, ParamsError> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = input.get(i + 1).and_then(|b| hex_value(*b));
                let lo = input.get(i + 2).and_then(|b| hex_value(*b));
                match (hi, lo) {
                    (Some(h), Some(l)) => out.push(h << 4 | l),
                    _ => return Err(ParamsError::BadPercentEncoding),
                }
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| ParamsError::InvalidUtf8)
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-encodes a value for a query string (RFC 3986 unreserved characters kept).
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b >> 4)]));
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b & 15)]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_decodes() {
        let p = Params::parse(b"a=1&b=x+y%2Bz&c=%E2%9C%93").unwrap_or_default();
        assert_eq!(p.get("a"), Some("1"));
        assert_eq!(p.get("b"), Some("x y+z"));
        assert_eq!(p.get("c"), Some("✓"));
    }

    #[test]
    fn empty_value_is_absent() {
        let p = Params::parse(b"state=&scope").unwrap_or_default();
        assert_eq!(p.get("state"), None);
        assert_eq!(p.get("scope"), None);
    }

    #[test]
    fn repeated_names_are_remembered() {
        let p = Params::parse(b"scope=a&scope=b&x=1").unwrap_or_default();
        assert!(p.is_repeated("scope"));
        assert!(!p.is_repeated("x"));
        assert_eq!(p.first_repeated(&["x", "scope"]), Some("scope"));
    }

    #[test]
    fn bad_input_is_refused() {
        for bad in [&b"a=%"[..], b"a=%zz", b"a=%4", b"a=%C0%AF", b"a=\xff"] {
            assert!(Params::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn too_many_parameters_are_refused() {
        let body = (0..=MAX_PARAMS)
            .map(|i| format!("p{i}=1"))
            .collect::<Vec<_>>()
            .join("&");
        assert_eq!(Params::parse(body.as_bytes()), Err(ParamsError::TooMany));
    }

    #[test]
    fn json_objects_become_parameters() {
        let p =
            Params::from_json(br#"{"grant_type":"authorization_code","code":"c","n":5,"o":{}}"#)
                .unwrap_or_default();
        assert_eq!(p.get("grant_type"), Some("authorization_code"));
        assert_eq!(p.get("n"), Some("5"));
        assert_eq!(p.get("o"), None);
        let dup = Params::from_json(br#"{"code":"a","code":"b"}"#).unwrap_or_default();
        assert!(dup.is_repeated("code"));
        assert_eq!(Params::from_json(b"[1]"), Err(ParamsError::NotJsonObject));
        assert_eq!(Params::from_json(b"{"), Err(ParamsError::NotJsonObject));
    }

    #[test]
    fn encode_round_trips() {
        let s = "a b&c=d/é%+#";
        assert_eq!(decode(encode(s).as_bytes()).unwrap_or_default(), s);
    }
}
