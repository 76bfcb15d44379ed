//! `Sensitive`: a [`SecretString`] that may be written where the secret must go (the
//! daemon's wire, a config file) and compared (requests in tests). secrecy keeps its
//! secrets out of serde on purpose; this newtype is the one place that lets a secret
//! through, so every field that does so says it in its type. Storage, redaction and
//! wiping are secrecy's. It knows nothing of where the secret is used.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A secret that may be serialized: Debug prints `***`, memory is wiped on drop.
#[derive(Clone)]
pub struct Sensitive(SecretString);

impl Sensitive {
    pub fn new(s: impl Into<String>) -> Self {
        Sensitive(SecretString::from(s.into()))
    }
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl Default for Sensitive {
    fn default() -> Self {
        Sensitive::new("")
    }
}

impl PartialEq for Sensitive {
    fn eq(&self, other: &Self) -> bool {
        self.expose() == other.expose()
    }
}

impl Eq for Sensitive {}

impl fmt::Debug for Sensitive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

impl Serialize for Sensitive {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.expose())
    }
}

impl<'de> Deserialize<'de> for Sensitive {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Sensitive::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_and_the_wire_carries_the_value() {
        let s = Sensitive::new("123456");
        assert_eq!(format!("{s:?}"), "\"***\"");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"123456\"");
        let back: Sensitive = serde_json::from_str("\"123456\"").unwrap();
        assert_eq!(back, s);
    }
}
