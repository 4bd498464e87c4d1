//! The svc.conf parser: ACE's classic directive syntax, validated whole before anything applies.
//!
//! ```text
//! # comment to the end of the line
//! dynamic NAME Service_Object * LIBRARY:FACTORY() [active|inactive] ["ARGS"]
//! static  NAME [active|inactive] ["ARGS"]
//! remove  NAME
//! suspend NAME
//! resume  NAME
//! ```
//!
//! Directives may span several lines; tokens are separated by any white space.
//! `$VAR` and `${VAR}` are expanded from the environment in names, library specs and
//! arguments (`$$` is a literal `$`); an undefined variable is an error.
//! The quoted argument string is split into an argv the way a shell would split it
//! (white space separates, `'…'` groups literally, `\` escapes) *before* expansion, so a variable's
//! value never adds arguments or directives.

use std::fmt;

/// Inputs larger than this are refused before parsing.
pub const MAX_INPUT: usize = 1 << 20;
/// Longest token (word or quoted string) accepted.
pub const MAX_TOKEN: usize = 8 * 1024;
/// Most directives accepted from one input.
pub const MAX_DIRECTIVES: usize = 10_000;
/// Most arguments one directive may pass.
pub const MAX_ARGS: usize = 256;
/// Longest value a variable expansion may produce in one token.
pub const MAX_EXPANDED: usize = 64 * 1024;

/// A place in a configuration source: 1-based line and column (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Position {
    /// 1-based line.
    pub line: u32,
    /// 1-based column, counted in characters.
    pub column: u32,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// A syntax or validation error: where it is and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// The source's name (a file path, or `<directive>` for text passed through the API).
    pub source: String,
    /// Where the error was found.
    pub position: Position,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.source, self.position, self.message)
    }
}

impl std::error::Error for ParseError {}

/// Whether a component starts serving after `init` (ACE's `active`/`inactive`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// Initialised and serving (the default).
    Active,
    /// Initialised, then suspended at once.
    Inactive,
}

/// One parsed directive.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Directive {
    /// `dynamic NAME Service_Object * LIBRARY:FACTORY() [active|inactive] ["ARGS"]`.
    Dynamic {
        /// The component's name in the repository.
        name: String,
        /// The library as written (a path, or a name searched as `lib<name>.so`).
        library: String,
        /// The exported factory function.
        factory: String,
        /// Active or inactive after init.
        activation: Activation,
        /// The argv passed to `init`.
        args: Vec<String>,
    },
    /// `static NAME [active|inactive] ["ARGS"]`: a factory linked into the program.
    Static {
        /// The registered static component's name.
        name: String,
        /// Active or inactive after init.
        activation: Activation,
        /// The argv passed to `init`.
        args: Vec<String>,
    },
    /// `remove NAME`.
    Remove {
        /// The component to finalise and remove.
        name: String,
    },
    /// `suspend NAME`.
    Suspend {
        /// The component to suspend.
        name: String,
    },
    /// `resume NAME`.
    Resume {
        /// The component to resume.
        name: String,
    },
}

impl Directive {
    /// The name of the component the directive is about.
    pub fn name(&self) -> &str {
        match self {
            Directive::Dynamic { name, .. }
            | Directive::Static { name, .. }
            | Directive::Remove { name }
            | Directive::Suspend { name }
            | Directive::Resume { name } => name,
        }
    }
}

/// A directive and where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// The directive.
    pub directive: Directive,
    /// The position of its keyword.
    pub position: Position,
}

/// Parses `text` (named `source` in errors), expanding variables with `env`.
///
/// The first error ends parsing; nothing is returned but the error, so a caller applies
/// either every directive or none.
///
/// ```
/// use component_configurator::svc_conf::{parse, Directive, Activation};
/// let text = "dynamic Echo Service_Object *\n  cc_echo:_make_echo() active \"-p ${PORT}\"\n";
/// let env = |name: &str| (name == "PORT").then(|| "7000".to_owned());
/// let parsed = parse("svc.conf", text, &env)?;
/// assert_eq!(parsed[0].directive, Directive::Dynamic {
///     name: "Echo".into(), library: "cc_echo".into(), factory: "_make_echo".into(),
///     activation: Activation::Active, args: vec!["-p".into(), "7000".into()],
/// });
/// let err = parse("svc.conf", "dynamic Echo Service_Object *", &env).unwrap_err();
/// assert_eq!(err.to_string(), "svc.conf:1:30: unexpected end of input: expected LIBRARY:FACTORY()");
/// # Ok::<(), component_configurator::svc_conf::ParseError>(())
/// ```
pub fn parse(
    source: &str,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Located>, ParseError> {
    let fail = |position: Position, message: String| ParseError {
        source: source.to_owned(),
        position,
        message,
    };
    if text.len() > MAX_INPUT {
        return Err(fail(
            Position { line: 1, column: 1 },
            format!(
                "input is {} bytes, more than the limit of {MAX_INPUT}",
                text.len()
            ),
        ));
    }
    let tokens = tokenize(text).map_err(|(p, m)| fail(p, m))?;
    let mut parser = Parser {
        tokens,
        at: 0,
        end: end_position(text),
        env,
    };
    let mut out = Vec::new();
    while let Some(token) = parser.peek() {
        if out.len() == MAX_DIRECTIVES {
            return Err(fail(
                token.position,
                format!("more than {MAX_DIRECTIVES} directives"),
            ));
        }
        let located = parser.directive().map_err(|(p, m)| fail(p, m))?;
        out.push(located);
    }
    Ok(out)
}

/// Parses bytes that may not be UTF-8 (as read from a file).
pub fn parse_bytes(
    source: &str,
    bytes: &[u8],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Located>, ParseError> {
    match std::str::from_utf8(bytes) {
        Ok(text) => parse(source, text, env),
        Err(e) => {
            let valid = std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default();
            let mut position = end_position(valid);
            if valid.len() > MAX_INPUT {
                position = Position { line: 1, column: 1 };
            }
            Err(ParseError {
                source: source.to_owned(),
                position,
                message: "the input is not valid UTF-8".to_owned(),
            })
        }
    }
}

fn end_position(text: &str) -> Position {
    let mut p = Position { line: 1, column: 1 };
    for c in text.chars() {
        if c == '\n' {
            p.line = p.line.saturating_add(1);
            p.column = 1;
        } else {
            p.column = p.column.saturating_add(1);
        }
    }
    p
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
enum Kind {
    #[default]
    Word,
    Quoted,
}

#[derive(Debug, Clone, Default)]
struct Token {
    kind: Kind,
    text: String,
    position: Position,
    /// Position of each character of `text` (for errors inside quoted strings and words).
    positions: Vec<Position>,
}

type Failure = (Position, String);

fn tokenize(text: &str) -> Result<Vec<Token>, Failure> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    let mut pos = Position { line: 1, column: 1 };
    let advance = |pos: &mut Position, c: char| {
        if c == '\n' {
            pos.line = pos.line.saturating_add(1);
            pos.column = 1;
        } else {
            pos.column = pos.column.saturating_add(1);
        }
    };
    while let Some(&c) = chars.peek() {
        if c == '\0' {
            return Err((pos, "NUL character in input".to_owned()));
        }
        if c.is_whitespace() {
            chars.next();
            advance(&mut pos, c);
        } else if c == '#' {
            while let Some(&c) = chars.peek() {
                if c == '\n' {
                    break;
                }
                chars.next();
                advance(&mut pos, c);
            }
        } else if c == '"' {
            let start = pos;
            chars.next();
            advance(&mut pos, c);
            let mut s = String::new();
            let mut positions = Vec::new();
            loop {
                let Some(c) = chars.next() else {
                    return Err((start, "unterminated quoted string".to_owned()));
                };
                let here = pos;
                advance(&mut pos, c);
                match c {
                    '"' => break,
                    '\0' => return Err((here, "NUL character in input".to_owned())),
                    '\\' => {
                        // Keep the escape for the argv splitter, which gives it meaning.
                        let Some(next) = chars.next() else {
                            return Err((start, "unterminated quoted string".to_owned()));
                        };
                        let there = pos;
                        advance(&mut pos, next);
                        if next == '\0' {
                            return Err((there, "NUL character in input".to_owned()));
                        }
                        s.push('\\');
                        positions.push(here);
                        s.push(next);
                        positions.push(there);
                    }
                    _ => {
                        s.push(c);
                        positions.push(here);
                    }
                }
                if s.len() > MAX_TOKEN {
                    return Err((
                        start,
                        format!("quoted string longer than {MAX_TOKEN} bytes"),
                    ));
                }
            }
            tokens.push(Token {
                kind: Kind::Quoted,
                text: s,
                position: start,
                positions,
            });
        } else {
            let start = pos;
            let mut s = String::new();
            let mut positions = Vec::new();
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() || c == '"' || c == '#' {
                    break;
                }
                if c == '\0' {
                    return Err((pos, "NUL character in input".to_owned()));
                }
                s.push(c);
                positions.push(pos);
                chars.next();
                advance(&mut pos, c);
                if s.len() > MAX_TOKEN {
                    return Err((start, format!("word longer than {MAX_TOKEN} bytes")));
                }
            }
            tokens.push(Token {
                kind: Kind::Word,
                text: s,
                position: start,
                positions,
            });
        }
    }
    Ok(tokens)
}

struct Parser<'a> {
    tokens: Vec<Token>,
    at: usize,
    end: Position,
    env: &'a dyn Fn(&str) -> Option<String>,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next_word(&mut self, expected: &str) -> Result<Token, Failure> {
        match self.tokens.get(self.at) {
            None => Err((
                self.end,
                format!("unexpected end of input: expected {expected}"),
            )),
            Some(t) if t.kind == Kind::Quoted => Err((
                t.position,
                format!("expected {expected}, found a quoted string"),
            )),
            Some(_) => {
                // Each token is consumed once: move it out rather than clone it.
                let t = std::mem::take(&mut self.tokens[self.at]);
                self.at += 1;
                Ok(t)
            }
        }
    }

    fn name(&mut self) -> Result<String, Failure> {
        let t = self.next_word("a component name")?;
        let name = expand(&t.text, &t.positions, t.position, self.env)?;
        check_name(&name).map_err(|m| (t.position, m))?;
        Ok(name)
    }

    fn directive(&mut self) -> Result<Located, Failure> {
        let keyword = self.next_word("a directive")?;
        let position = keyword.position;
        let directive = match keyword.text.as_str() {
            "dynamic" => {
                let name = self.name()?;
                let kind = self.next_word("Service_Object")?;
                let star_attached = match kind.text.as_str() {
                    "Service_Object" => false,
                    "Service_Object*" => true,
                    "Module" | "Stream" => {
                        return Err((
                            kind.position,
                            format!("{} components are not supported", kind.text),
                        ));
                    }
                    other => {
                        return Err((
                            kind.position,
                            format!("expected Service_Object, found {other:?}"),
                        ));
                    }
                };
                if !star_attached {
                    let star = self.next_word("*")?;
                    if star.text != "*" {
                        return Err((star.position, format!("expected *, found {:?}", star.text)));
                    }
                }
                let spec = self.next_word("LIBRARY:FACTORY()")?;
                let (library, factory) = self.library_spec(&spec)?;
                let (activation, args) = self.tail()?;
                Directive::Dynamic {
                    name,
                    library,
                    factory,
                    activation,
                    args,
                }
            }
            "static" => {
                let name = self.name()?;
                let (activation, args) = self.tail()?;
                Directive::Static {
                    name,
                    activation,
                    args,
                }
            }
            "remove" => Directive::Remove { name: self.name()? },
            "suspend" => Directive::Suspend { name: self.name()? },
            "resume" => Directive::Resume { name: self.name()? },
            "stream" => {
                return Err((position, "stream directives are not supported".to_owned()));
            }
            other => {
                return Err((
                    position,
                    format!(
                        "expected a directive (dynamic, static, remove, suspend, resume), found {other:?}"
                    ),
                ));
            }
        };
        Ok(Located {
            directive,
            position,
        })
    }

    fn library_spec(&self, spec: &Token) -> Result<(String, String), Failure> {
        let text = &spec.text;
        let Some(open) = text.strip_suffix("()") else {
            return Err((
                spec.position,
                format!("expected LIBRARY:FACTORY(), found {text:?}"),
            ));
        };
        let Some(colon) = open.rfind(':') else {
            return Err((
                spec.position,
                format!("expected LIBRARY:FACTORY(), found {text:?} (no ':')"),
            ));
        };
        let library_raw = &open[..colon];
        let factory = &open[colon + 1..];
        let factory_at = spec
            .positions
            .get(open[..=colon].chars().count())
            .copied()
            .unwrap_or(spec.position);
        if !is_identifier(factory) {
            return Err((
                factory_at,
                format!("the factory {factory:?} is not a C identifier"),
            ));
        }
        let lib_chars = library_raw.chars().count();
        let library = expand(
            library_raw,
            &spec.positions[..lib_chars.min(spec.positions.len())],
            spec.position,
            self.env,
        )?;
        if library.is_empty() {
            return Err((spec.position, "the library name is empty".to_owned()));
        }
        if library.contains('\0') {
            return Err((spec.position, "the library name contains NUL".to_owned()));
        }
        Ok((library, factory.to_owned()))
    }

    /// The optional `active|inactive` and `"ARGS"` that end `dynamic` and `static`.
    fn tail(&mut self) -> Result<(Activation, Vec<String>), Failure> {
        let mut activation = Activation::Active;
        if let Some(t) = self.peek()
            && t.kind == Kind::Word
        {
            match t.text.as_str() {
                "active" => {
                    activation = Activation::Active;
                    self.at += 1;
                }
                "inactive" => {
                    activation = Activation::Inactive;
                    self.at += 1;
                }
                _ => {}
            }
        }
        let mut args = Vec::new();
        if let Some(t) = self.peek()
            && t.kind == Kind::Quoted
        {
            let t = std::mem::take(&mut self.tokens[self.at]);
            self.at += 1;
            for (word, positions) in split_argv(&t)? {
                if args.len() == MAX_ARGS {
                    return Err((t.position, format!("more than {MAX_ARGS} arguments")));
                }
                args.push(expand(&word, &positions, t.position, self.env)?);
            }
        }
        Ok((activation, args))
    }
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the component name is empty".to_owned());
    }
    if name.len() > 256 {
        return Err("the component name is longer than 256 bytes".to_owned());
    }
    if let Some(c) = name.chars().find(|c| c.is_control() || c.is_whitespace()) {
        return Err(format!("the component name contains the character {c:?}"));
    }
    if matches!(
        name,
        "dynamic" | "static" | "remove" | "suspend" | "resume" | "active" | "inactive"
    ) {
        return Err(format!("{name:?} is a keyword, not a component name"));
    }
    Ok(())
}

/// Splits a quoted argument string into words, keeping each character's position.
fn split_argv(t: &Token) -> Result<Vec<(String, Vec<Position>)>, Failure> {
    let mut words = Vec::new();
    let mut word: Option<(String, Vec<Position>)> = None;
    let chars: Vec<(char, Position)> = t
        .text
        .chars()
        .zip(
            t.positions
                .iter()
                .copied()
                .chain(std::iter::repeat(t.position)),
        )
        .collect();
    let mut i = 0;
    let mut in_single: Option<Position> = None;
    while i < chars.len() {
        let (c, p) = chars[i];
        i += 1;
        if in_single.is_some() {
            // Inside single quotes everything is literal, `$` included; only the escapes
            // the surrounding double-quoted string needs (`\"`, `\\`) are undone.
            let w = word.get_or_insert_with(Default::default);
            match c {
                '\'' => in_single = None,
                '\\' if matches!(chars.get(i), Some(('"' | '\\', _))) => {
                    let (next, q) = chars[i];
                    i += 1;
                    w.0.push(next);
                    w.1.push(q);
                }
                '$' => {
                    w.0.push_str("$$");
                    w.1.push(p);
                    w.1.push(p);
                }
                c => {
                    w.0.push(c);
                    w.1.push(p);
                }
            }
            continue;
        }
        match c {
            '\'' => {
                in_single = Some(p);
                word.get_or_insert_with(Default::default);
            }
            '\\' => {
                let Some(&(next, q)) = chars.get(i) else {
                    return Err((p, "a backslash ends the arguments".to_owned()));
                };
                i += 1;
                let w = word.get_or_insert_with(Default::default);
                if next == '$' {
                    // An escaped dollar stays literal through expansion.
                    w.0.push_str("$$");
                    w.1.push(q);
                    w.1.push(q);
                } else {
                    w.0.push(next);
                    w.1.push(q);
                }
            }
            c if c.is_whitespace() => {
                if let Some(w) = word.take() {
                    words.push(w);
                }
            }
            c => {
                let w = word.get_or_insert_with(Default::default);
                w.0.push(c);
                w.1.push(p);
            }
        }
    }
    if let Some(start) = in_single {
        return Err((
            start,
            "unterminated single quote in the arguments".to_owned(),
        ));
    }
    if let Some(w) = word.take() {
        words.push(w);
    }
    Ok(words)
}

/// Expands `$VAR`, `${VAR}` and `$$` in `text`; `positions[i]` is the position of char `i`.
fn expand(
    text: &str,
    positions: &[Position],
    fallback: Position,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, Failure> {
    if !text.contains('$') {
        return Ok(text.to_owned());
    }
    let chars: Vec<char> = text.chars().collect();
    let at = |i: usize| positions.get(i).copied().unwrap_or(fallback);
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c != '$' {
            out.push(c);
            i += 1;
            continue;
        }
        let start = i;
        i += 1;
        let name: String = match chars.get(i) {
            Some('$') => {
                out.push('$');
                i += 1;
                continue;
            }
            Some('{') => {
                let Some(close) = chars[i..].iter().position(|&c| c == '}') else {
                    return Err((
                        at(start),
                        "unterminated ${ in variable reference".to_owned(),
                    ));
                };
                let name: String = chars[i + 1..i + close].iter().collect();
                i += close + 1;
                if !is_identifier(&name) {
                    return Err((at(start), format!("{name:?} is not a variable name")));
                }
                name
            }
            Some(&c) if c == '_' || c.is_ascii_alphabetic() => {
                let len = chars[i..]
                    .iter()
                    .take_while(|c| **c == '_' || c.is_ascii_alphanumeric())
                    .count();
                let name: String = chars[i..i + len].iter().collect();
                i += len;
                name
            }
            _ => {
                out.push('$');
                continue;
            }
        };
        match env(&name) {
            Some(value) => out.push_str(&value),
            None => {
                return Err((at(start), format!("the variable {name} is not defined")));
            }
        }
        if out.len() > MAX_EXPANDED {
            return Err((
                at(start),
                format!("expansion longer than {MAX_EXPANDED} bytes"),
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn err(text: &str) -> String {
        parse("t.conf", text, &no_env).unwrap_err().to_string()
    }

    fn one(text: &str) -> Directive {
        let mut v = parse("t.conf", text, &no_env).unwrap();
        assert_eq!(v.len(), 1);
        v.remove(0).directive
    }

    #[test]
    fn all_directive_kinds() {
        let text = "static Stats inactive \"-n 3\"\nremove A\nsuspend B\nresume C\n";
        let v = parse("t.conf", text, &no_env).unwrap();
        assert_eq!(
            v.iter().map(|l| l.directive.clone()).collect::<Vec<_>>(),
            vec![
                Directive::Static {
                    name: "Stats".into(),
                    activation: Activation::Inactive,
                    args: vec!["-n".into(), "3".into()]
                },
                Directive::Remove { name: "A".into() },
                Directive::Suspend { name: "B".into() },
                Directive::Resume { name: "C".into() },
            ]
        );
        assert_eq!(v[3].position, Position { line: 4, column: 1 });
    }

    #[test]
    fn multi_line_directive_with_comments() {
        let text = "# head\ndynamic   Echo # the name\n Service_Object\n *\n\
                    lib/x.so:_make()\n inactive # state\n \"-p 1\" # args\nsuspend Echo";
        let v = parse("t.conf", text, &no_env).unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].position, Position { line: 2, column: 1 });
        assert_eq!(
            v[0].directive,
            Directive::Dynamic {
                name: "Echo".into(),
                library: "lib/x.so".into(),
                factory: "_make".into(),
                activation: Activation::Inactive,
                args: vec!["-p".into(), "1".into()],
            }
        );
    }

    #[test]
    fn argv_splitting_quotes_and_escapes() {
        let d = one(r#"static S "a  'b c' d\"e f\\g \$HOME '' '$X \"q\"'""#);
        let Directive::Static { args, .. } = d else {
            panic!("not static")
        };
        assert_eq!(
            args,
            vec!["a", "b c", "d\"e", "f\\g", "$HOME", "", "$X \"q\""]
        );
    }

    #[test]
    fn variables_expand_without_adding_arguments() {
        let env = |n: &str| match n {
            "PORT" => Some("9".to_owned()),
            "SPLIT" => Some("x y\ndynamic".to_owned()),
            "LIB" => Some("/opt/p".to_owned()),
            _ => None,
        };
        let v = parse(
            "t",
            "dynamic N Service_Object * ${LIB}/libq.so:f() \"-p $PORT -q ${SPLIT} $$ $\"",
            &env,
        )
        .unwrap();
        let Directive::Dynamic { library, args, .. } = &v[0].directive else {
            panic!("not dynamic")
        };
        assert_eq!(library, "/opt/p/libq.so");
        assert_eq!(args, &vec!["-p", "9", "-q", "x y\ndynamic", "$", "$"]);
    }

    #[test]
    fn undefined_variable_reports_its_position() {
        assert_eq!(
            err("static S \"-p $NOPE\""),
            "t.conf:1:14: the variable NOPE is not defined"
        );
        assert_eq!(
            err("\n  static S \"${X\""),
            "t.conf:2:13: unterminated ${ in variable reference"
        );
        assert_eq!(
            err("static S \"${1x}\""),
            "t.conf:1:11: \"1x\" is not a variable name"
        );
    }

    #[test]
    fn syntax_errors_carry_line_and_column() {
        assert_eq!(
            err("dynamic X Service_Object * lib:f() \"a\"\n  bogus Y"),
            "t.conf:2:3: expected a directive (dynamic, static, remove, suspend, resume), found \"bogus\""
        );
        assert_eq!(
            err("dynamic X Service_Obj * lib:f()"),
            "t.conf:1:11: expected Service_Object, found \"Service_Obj\""
        );
        assert_eq!(
            err("dynamic X Service_Object + lib:f()"),
            "t.conf:1:26: expected *, found \"+\""
        );
        assert_eq!(
            err("dynamic X Service_Object * libf()"),
            "t.conf:1:28: expected LIBRARY:FACTORY(), found \"libf()\" (no ':')"
        );
        assert_eq!(
            err("dynamic X Service_Object * lib:f"),
            "t.conf:1:28: expected LIBRARY:FACTORY(), found \"lib:f\""
        );
        assert_eq!(
            err("dynamic X Service_Object * lib:9f()"),
            "t.conf:1:32: the factory \"9f\" is not a C identifier"
        );
        assert_eq!(
            err("dynamic X Module * lib:f()"),
            "t.conf:1:11: Module components are not supported"
        );
        assert_eq!(
            err("stream S { }"),
            "t.conf:1:1: stream directives are not supported"
        );
        assert_eq!(
            err("remove \"X\""),
            "t.conf:1:8: expected a component name, found a quoted string"
        );
        assert_eq!(
            err("\"args\""),
            "t.conf:1:1: expected a directive, found a quoted string"
        );
        assert_eq!(
            err("suspend active"),
            "t.conf:1:9: \"active\" is a keyword, not a component name"
        );
    }

    #[test]
    fn truncated_input_reports_end_position() {
        assert_eq!(
            err("dynamic"),
            "t.conf:1:8: unexpected end of input: expected a component name"
        );
        assert_eq!(
            err("dynamic X\n"),
            "t.conf:2:1: unexpected end of input: expected Service_Object"
        );
        assert_eq!(
            err("static S \"-p 1"),
            "t.conf:1:10: unterminated quoted string"
        );
        assert_eq!(
            err("static S \"ab\\"),
            "t.conf:1:10: unterminated quoted string"
        );
        assert_eq!(
            err("static S \"'x\""),
            "t.conf:1:11: unterminated single quote in the arguments"
        );
        assert_eq!(
            err("static S \"x \\\\\\\""),
            "t.conf:1:10: unterminated quoted string"
        );
    }

    #[test]
    fn hostile_input_is_refused_with_a_position() {
        assert_eq!(err("static S\0"), "t.conf:1:9: NUL character in input");
        assert_eq!(
            err("static S \"a\0\""),
            "t.conf:1:12: NUL character in input"
        );
        let bytes = b"static S\n\xff";
        assert_eq!(
            parse_bytes("t.conf", bytes, &no_env)
                .unwrap_err()
                .to_string(),
            "t.conf:2:1: the input is not valid UTF-8"
        );
        // Control characters cannot hide in names.
        assert_eq!(
            err("remove A\u{7}B"),
            "t.conf:1:8: the component name contains the character '\\u{7}'"
        );
        // A variable that expands to itself many times is bounded.
        let big = |_: &str| Some("x".repeat(MAX_EXPANDED / 2 + 1));
        let e = parse("t", "static S \"$A$A$A\"", &big).unwrap_err();
        assert!(e.message.contains("expansion longer than"), "{e}");
    }

    #[test]
    fn oversized_input_is_refused() {
        let huge = "#".repeat(MAX_INPUT + 1);
        assert!(err(&huge).contains("more than the limit"));
        let long_word = format!("remove {}", "a".repeat(MAX_TOKEN + 1));
        assert_eq!(
            err(&long_word),
            format!("t.conf:1:8: word longer than {MAX_TOKEN} bytes")
        );
        let long_quote = format!("static S \"{}\"", "a".repeat(MAX_TOKEN + 1));
        assert!(err(&long_quote).starts_with("t.conf:1:10: quoted string longer"));
        let many_args = format!("static S \"{}\"", "a ".repeat(MAX_ARGS + 1));
        assert_eq!(
            err(&many_args),
            format!("t.conf:1:10: more than {MAX_ARGS} arguments")
        );
        let many = "remove A\n".repeat(MAX_DIRECTIVES + 1);
        assert_eq!(
            err(&many),
            format!(
                "t.conf:{}:1: more than {MAX_DIRECTIVES} directives",
                MAX_DIRECTIVES + 1
            )
        );
    }

    #[test]
    fn empty_and_comment_only_inputs_have_no_directives() {
        assert!(parse("t", "", &no_env).unwrap().is_empty());
        assert!(
            parse("t", "  # only\n#comments\n\n", &no_env)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        assert_eq!(
            err("# é\nremove é ü"),
            "t.conf:2:10: expected a directive (dynamic, static, remove, suspend, resume), found \"ü\""
        );
    }
}
