//! svc.conf parsing: a round-trip property, arbitrary input never panics, positions.

use component_configurator::svc_conf::{Activation, Directive, parse, parse_bytes};
use proptest::prelude::*;

fn no_env(_: &str) -> Option<String> {
    None
}

fn name() -> impl Strategy<Value = String> {
    "[A-Za-z_][A-Za-z0-9_]{0,12}".prop_filter("not a keyword", |n| {
        !matches!(
            n.as_str(),
            "dynamic" | "static" | "remove" | "suspend" | "resume" | "active" | "inactive"
        )
    })
}

fn arg() -> impl Strategy<Value = String> {
    "[A-Za-z0-9 ._'\"\\\\$-]{0,10}"
}

fn activation() -> impl Strategy<Value = Activation> {
    prop_oneof![Just(Activation::Active), Just(Activation::Inactive)]
}

fn directive() -> impl Strategy<Value = Directive> {
    prop_oneof![
        (
            name(),
            "[a-z/._]{1,10}",
            name(),
            activation(),
            prop::collection::vec(arg(), 0..4)
        )
            .prop_map(
                |(name, library, factory, activation, args)| Directive::Dynamic {
                    name,
                    library,
                    factory,
                    activation,
                    args
                }
            ),
        (name(), activation(), prop::collection::vec(arg(), 0..4)).prop_map(
            |(name, activation, args)| Directive::Static {
                name,
                activation,
                args
            }
        ),
        name().prop_map(|name| Directive::Remove { name }),
        name().prop_map(|name| Directive::Suspend { name }),
        name().prop_map(|name| Directive::Resume { name }),
    ]
}

/// Quotes one argument so the splitter gives it back unchanged.
fn quote_arg(a: &str) -> String {
    let mut out = String::from("'");
    for c in a.chars() {
        match c {
            '\'' => out.push_str("'\\''"),
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// Writes a directive with arbitrary line breaks and comments between its tokens.
fn render(d: &Directive, sep: &str) -> String {
    let act = |a: &Activation| match a {
        Activation::Active => "active",
        Activation::Inactive => "inactive",
    };
    let args = |a: &[String]| {
        format!(
            "\"{}\"",
            a.iter().map(|s| quote_arg(s)).collect::<Vec<_>>().join(" ")
        )
    };
    match d {
        Directive::Dynamic {
            name,
            library,
            factory,
            activation,
            args: a,
        } => format!(
            "dynamic{sep}{name}{sep}Service_Object{sep}*{sep}{library}:{factory}(){sep}{}{sep}{}",
            act(activation),
            args(a)
        ),
        Directive::Static {
            name,
            activation,
            args: a,
        } => {
            format!("static{sep}{name}{sep}{}{sep}{}", act(activation), args(a))
        }
        Directive::Remove { name } => format!("remove{sep}{name}"),
        Directive::Suspend { name } => format!("suspend{sep}{name}"),
        Directive::Resume { name } => format!("resume{sep}{name}"),
        _ => unreachable!("no other directives are generated"),
    }
}

proptest! {
    #[test]
    fn rendered_directives_parse_back(
        directives in prop::collection::vec(directive(), 0..8),
        sep in prop_oneof![Just(" "), Just("\n  "), Just(" # note\n"), Just("\t\n")],
    ) {
        let text: String = directives.iter().map(|d| render(d, sep) + "\n").collect();
        let parsed = parse("p.conf", &text, &no_env).unwrap();
        let got: Vec<Directive> = parsed.into_iter().map(|l| l.directive).collect();
        prop_assert_eq!(got, directives);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_bytes("fuzz", &bytes, &|_| Some("$x ${y}\"".to_owned()));
    }

    #[test]
    fn errors_point_inside_the_input(text in "[a-z\"#$ {}:()*\n]{0,80}") {
        if let Err(e) = parse("p", &text, &no_env) {
            let lines = text.split('\n').count() as u32;
            prop_assert!(e.position.line >= 1 && e.position.line <= lines, "{e}");
            prop_assert!(e.position.column >= 1, "{e}");
        }
    }
}

#[test]
fn file_errors_name_the_file_line_and_column() {
    let dir = crate::support::temp_dir("parse");
    let conf = dir.join("bad.conf");
    std::fs::write(
        &conf,
        "# services\nstatic A\n\ndynamic B Service_Object *\n    lib_b:make_b(  \"-x\"\n",
    )
    .unwrap();
    let mut cfg = component_configurator::Configurator::default();
    cfg.register_static("A", || unreachable!("nothing may be applied"));
    let err = cfg.process_file(&conf).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}:5:5: expected LIBRARY:FACTORY(), found \"lib_b:make_b(\"",
            conf.display()
        )
    );
    assert!(cfg.repository().is_empty());
}
