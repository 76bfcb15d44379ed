//! A kubeconfig (kubectl's YAML) as data: its named `clusters`, `contexts` and `users`
//! entries put in or replaced by name, `current-context` set, and every other key,
//! entry and list order kept. Comments, anchors and quoting style are not data and are
//! not kept when the file is written again. Text only: it must not know where the file
//! lives, who may write it, or what AWS is.

use std::fmt;
use std::path::Path;

use indexmap::IndexMap;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

use crate::error::{Error, Result, display_path};

/// One YAML value, mappings in their order. A kubeconfig's keys are strings.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(IndexMap<String, Node>),
}

impl Node {
    fn str(s: &str) -> Node {
        Node::Str(s.to_string())
    }

    /// A mapping of `(key, value)`, in that order.
    pub(crate) fn map<const N: usize>(entries: [(&str, Node); N]) -> Node {
        Node::Map(
            entries
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        )
    }

    /// The value at `path` of nested mappings (`["context", "cluster"]`).
    pub(crate) fn at(&self, path: &[&str]) -> Option<&Node> {
        path.iter().try_fold(self, |node, key| match node {
            Node::Map(m) => m.get(*key),
            _ => None,
        })
    }

    /// The string at `path`, if it is one.
    pub(crate) fn str_at(&self, path: &[&str]) -> Option<&str> {
        match self.at(path) {
            Some(Node::Str(s)) => Some(s),
            _ => None,
        }
    }

    fn name(&self) -> Option<&str> {
        match self {
            Node::Map(m) => match m.get("name") {
                Some(Node::Str(s)) => Some(s),
                _ => None,
            },
            _ => None,
        }
    }
}

impl From<&str> for Node {
    fn from(s: &str) -> Node {
        Node::str(s)
    }
}

impl Serialize for Node {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Node::Null => s.serialize_unit(),
            Node::Bool(b) => s.serialize_bool(*b),
            Node::Int(i) => s.serialize_i64(*i),
            Node::UInt(u) => s.serialize_u64(*u),
            Node::Float(f) => s.serialize_f64(*f),
            Node::Str(v) => s.serialize_str(v),
            Node::Seq(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Node::Map(entries) => {
                let mut map = s.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Node, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a YAML value")
    }
    fn visit_unit<E>(self) -> std::result::Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_none<E>(self) -> std::result::Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Node, D::Error> {
        Node::deserialize(d)
    }
    fn visit_bool<E>(self, v: bool) -> std::result::Result<Node, E> {
        Ok(Node::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> std::result::Result<Node, E> {
        Ok(Node::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> std::result::Result<Node, E> {
        Ok(i64::try_from(v).map_or(Node::UInt(v), Node::Int))
    }
    fn visit_f64<E>(self, v: f64) -> std::result::Result<Node, E> {
        Ok(Node::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> std::result::Result<Node, E> {
        Ok(Node::str(v))
    }
    fn visit_string<E>(self, v: String) -> std::result::Result<Node, E> {
        Ok(Node::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Node, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Node, A::Error> {
        let mut entries = IndexMap::with_capacity(map.size_hint().unwrap_or(0));
        while let Some(key) = map.next_key::<Node>()? {
            let key = match key {
                Node::Str(s) => s,
                Node::Int(i) => i.to_string(),
                Node::UInt(u) => u.to_string(),
                Node::Bool(b) => b.to_string(),
                _ => return Err(de::Error::custom("a key that is not a plain scalar")),
            };
            let value = map.next_value()?;
            entries.insert(key, value);
        }
        Ok(Node::Map(entries))
    }
}

/// The lists of named entries a kubeconfig has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum List {
    Clusters,
    Contexts,
    Users,
}

impl List {
    fn key(self) -> &'static str {
        match self {
            List::Clusters => "clusters",
            List::Contexts => "contexts",
            List::Users => "users",
        }
    }
}

/// A kubeconfig's content.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Kubeconfig {
    root: IndexMap<String, Node>,
}

impl Kubeconfig {
    /// A kubeconfig from its text (empty: a new one, as kubectl starts it). `path` is
    /// only used in messages.
    pub(crate) fn parse(text: &str, path: &Path) -> Result<Kubeconfig> {
        let shown = display_path(path);
        let blank = text.lines().all(|l| {
            let l = l.trim();
            l.is_empty() || l.starts_with('#') || l == "---"
        });
        if blank {
            return Ok(Kubeconfig::new());
        }
        let node: Node = serde_saphyr::from_str(text).map_err(|e| {
            let at = e
                .location()
                .map(|l| format!(":{}:{}", l.line(), l.column()))
                .unwrap_or_default();
            not_kubeconfig(format!(
                "{shown}{at}: not a kubeconfig (YAML): {}",
                crate::error::tidy(&e.without_snippet().to_string())
            ))
        })?;
        let Node::Map(root) = node else {
            return Err(not_kubeconfig(format!(
                "{shown}: not a kubeconfig: its top level is not a mapping (KEY: VALUE lines)"
            )));
        };
        for list in [List::Clusters, List::Contexts, List::Users] {
            match root.get(list.key()) {
                None | Some(Node::Null | Node::Seq(_)) => {}
                Some(_) => {
                    return Err(not_kubeconfig(format!(
                        "{shown}: not a kubeconfig: `{}` is not a list",
                        list.key()
                    )));
                }
            }
        }
        Ok(Kubeconfig { root })
    }

    /// An empty kubeconfig, with the keys kubectl writes.
    pub(crate) fn new() -> Kubeconfig {
        let mut root = IndexMap::new();
        root.insert("apiVersion".into(), Node::str("v1"));
        root.insert("clusters".into(), Node::Seq(Vec::new()));
        root.insert("contexts".into(), Node::Seq(Vec::new()));
        root.insert("current-context".into(), Node::str(""));
        root.insert("kind".into(), Node::str("Config"));
        root.insert("preferences".into(), Node::Map(IndexMap::new()));
        root.insert("users".into(), Node::Seq(Vec::new()));
        Kubeconfig { root }
    }

    /// Puts `entry` (a mapping with a `name`) into `list`, in place of the entry of the
    /// same name if there is one, else at the end. Whether it was there already.
    pub(crate) fn upsert(&mut self, list: List, entry: Node) -> bool {
        let name = entry.name().map(str::to_string);
        let slot = self
            .root
            .entry(list.key().to_string())
            .or_insert(Node::Seq(Vec::new()));
        if matches!(slot, Node::Null) {
            *slot = Node::Seq(Vec::new());
        }
        let Node::Seq(items) = slot else {
            unreachable!(
                "parse refuses a kubeconfig whose {} is not a list",
                list.key()
            )
        };
        match items
            .iter_mut()
            .find(|i| i.name().is_some() && i.name() == name.as_deref())
        {
            Some(found) => {
                *found = entry;
                true
            }
            None => {
                items.push(entry);
                false
            }
        }
    }

    /// The entry of `list` named `name`.
    pub(crate) fn get(&self, list: List, name: &str) -> Option<&Node> {
        match self.root.get(list.key()) {
            Some(Node::Seq(items)) => items.iter().find(|i| i.name() == Some(name)),
            _ => None,
        }
    }

    /// Makes `context` the current one.
    pub(crate) fn set_current_context(&mut self, context: &str) {
        self.root
            .insert("current-context".into(), Node::str(context));
    }

    /// The YAML text.
    pub(crate) fn to_yaml(&self) -> Result<String> {
        serde_saphyr::to_string(&Node::Map(self.root.clone()))
            .map_err(|e| Error::other(format!("cannot write the kubeconfig as YAML: {e}")))
    }
}

impl Default for Kubeconfig {
    fn default() -> Self {
        Kubeconfig::new()
    }
}

/// A kubeconfig elhaz will not rewrite.
fn not_kubeconfig(message: String) -> Error {
    Error::config(message).with_hint(
        "fix the file, or write to another one: elhaz eks kubeconfig ... --kubeconfig PATH",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const KUBECTL_WRITTEN: &str = "apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: QUJD
    server: https://other.example:6443
  name: other
contexts:
- context:
    cluster: other
    namespace: \"007\"
    user: other
  name: other
current-context: other
kind: Config
preferences: {}
users:
- name: other
  user:
    token: \"true\"
    extensions:
      zeta: 1
      alpha: [1.5, null, yes]
";

    fn path() -> &'static Path {
        Path::new("/x/config")
    }

    #[test]
    fn other_entries_keys_order_and_types_survive_a_round_trip() {
        let k = Kubeconfig::parse(KUBECTL_WRITTEN, path()).unwrap();
        let again = Kubeconfig::parse(&k.to_yaml().unwrap(), path()).unwrap();
        assert_eq!(k, again);
        let text = k.to_yaml().unwrap();
        // Quoted strings stay strings, key order is the file's.
        let Node::Map(root) = serde_saphyr::from_str::<Node>(&text).unwrap() else {
            panic!("{text}")
        };
        assert_eq!(
            root.keys().collect::<Vec<_>>(),
            [
                "apiVersion",
                "clusters",
                "contexts",
                "current-context",
                "kind",
                "preferences",
                "users"
            ]
        );
        assert!(
            text.find("zeta").unwrap() < text.find("alpha").unwrap(),
            "{text}"
        );
        let Some(Node::Seq(users)) = root.get("users") else {
            panic!()
        };
        let Node::Map(user) = &users[0] else { panic!() };
        let Some(Node::Map(inner)) = user.get("user") else {
            panic!()
        };
        assert_eq!(inner.get("token"), Some(&Node::str("true")), "{text}");
    }

    #[test]
    fn an_entry_replaces_its_namesake_in_place_and_is_added_otherwise() {
        let mut k = Kubeconfig::parse(KUBECTL_WRITTEN, path()).unwrap();
        let entry = |server: &str| {
            Node::map([
                ("cluster", Node::map([("server", server.into())])),
                ("name", "mine".into()),
            ])
        };
        assert!(!k.upsert(List::Clusters, entry("https://a")));
        let once = k.clone();
        assert!(k.upsert(List::Clusters, entry("https://a")));
        assert_eq!(k, once, "the same entry twice changes nothing");
        assert!(k.upsert(List::Clusters, entry("https://b")));
        let text = k.to_yaml().unwrap();
        assert!(text.find("name: other").unwrap() < text.find("https://b").unwrap());
        assert!(!text.contains("https://a"), "{text}");
    }

    #[test]
    fn what_is_not_a_kubeconfig_is_refused_with_the_path() {
        for bad in ["a: [1, 2", "- just\n- a list\n", "clusters: 3\n"] {
            let e = Kubeconfig::parse(bad, path()).unwrap_err();
            assert!(e.message.starts_with("/x/config"), "{}", e.message);
            assert!(!e.message.contains('\n'), "{}", e.message);
            assert!(e.hint.is_some());
        }
        assert_eq!(
            Kubeconfig::parse("# nothing yet\n", path()).unwrap(),
            Kubeconfig::new()
        );
    }
}
