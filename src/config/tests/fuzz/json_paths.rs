//! The configuration side of `expect.json`: any key is either a dotted path
//! the matcher can follow, kept as written, or refused with the key's own
//! path (`targets[0].expect.json["a..b"]`).

use proptest::prelude::*;

use super::proptest_config;
use super::tree::{Node, Quote, Style};
use crate::config::{error, parse};

/// Keys a person might write, right or wrong: dotted names, empty parts,
/// brackets, and anything else.
fn key() -> impl Strategy<Value = String> {
    let part = prop_oneof![
        "[a-z0-9_]{1,5}",
        Just(String::new()),
        "[\\[\\]0-9]{1,3}",
        "\\PC{1,4}"
    ];
    prop_oneof![
        prop::collection::vec(part, 1..5).prop_map(|parts| parts.join(".")),
        "\\PC{0,12}",
    ]
}

fn with_json_key(key: &str) -> Node {
    let text = |s: &str| Node::Text(s.to_owned());
    Node::Map(vec![
        ("service".to_owned(), text("checkout")),
        (
            "targets".to_owned(),
            Node::List(vec![Node::Map(vec![
                ("name".to_owned(), text("health")),
                ("url".to_owned(), text("http://127.0.0.1:8080/health")),
                (
                    "expect".to_owned(),
                    Node::Map(vec![(
                        "json".to_owned(),
                        Node::Map(vec![(key.to_owned(), Node::raw("1"))]),
                    )]),
                ),
            ])]),
        ),
    ])
}

proptest! {
    #![proptest_config(proptest_config(256))]

    #[test]
    fn json_paths_are_kept_or_refused_at_their_key(
        key in key(),
        flow_from in 0usize..5,
        quote in prop_oneof![Just(Quote::Double), Just(Quote::Single), Just(Quote::Plain)],
    ) {
        let yaml = Style { flow_from, quote }.write(&with_json_key(&key));
        let followable = key.split('.').all(|part| !part.is_empty())
            && !key.contains(['[', ']']);
        match parse(&yaml, &super::super::env) {
            Ok(config) => {
                prop_assert!(followable, "accepted {:?}", key);
                let json = &config.targets[0].expect.json;
                prop_assert_eq!(json.keys().collect::<Vec<_>>(), vec![&key]);
            }
            Err(errors) => {
                prop_assert!(!followable, "refused {:?}: {}", key, errors);
                let path = error::key("targets[0].expect.json", &key);
                prop_assert_eq!(errors.0.len(), 1, "{}", errors);
                prop_assert_eq!(&errors.0[0].path, &path, "{}", errors);
                prop_assert!(errors.0[0].message.contains("like \"data.items.0.id\""));
            }
        }
    }
}
