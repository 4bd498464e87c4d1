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
    let fail = |offset: usize, message: String| ParseError {
        source: source.to_owned(),
        position: position_of(text, offset),
        message,
    };
    if text.len() > MAX_INPUT {
        return Err(fail(
            0,
            format!(
                "input is {} bytes, more than the limit of {MAX_INPUT}",
                text.len()
            ),
        ));
    }
    let tokens = tokenize(text).map_err(|(o, m)| fail(o, m))?;
    let mut parser = Parser {
        tokens,
        at: 0,
        end: text.len(),
        env,
    };
    let mut lines = Lines::new(text);
    let mut out = Vec::new();
    while let Some(token) = parser.peek() {
        if out.len() == MAX_DIRECTIVES {
            return Err(fail(
                token.start(),
                format!("more than {MAX_DIRECTIVES} directives"),
            ));
        }
        let (directive, offset) = parser.directive().map_err(|(o, m)| fail(o, m))?;
        out.push(Located {
            directive,
            position: lines.at(offset),
        });
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
            let position = if valid.len() > MAX_INPUT {
                Position { line: 1, column: 1 }
            } else {
                position_of(valid, valid.len())
            };
            Err(ParseError {
                source: source.to_owned(),
                position,
                message: "the input is not valid UTF-8".to_owned(),
            })
        }
    }
}

/// The line and column of byte `offset` (a char boundary) in `text`.
fn position_of(text: &str, offset: usize) -> Position {
    Lines::new(text).at(offset)
}

/// Turns increasing byte offsets into positions with one forward scan.
struct Lines<'a> {
    text: &'a str,
    offset: usize,
    position: Position,
}

impl<'a> Lines<'a> {
    fn new(text: &'a str) -> Self {
        Lines {
            text,
            offset: 0,
            position: Position { line: 1, column: 1 },
        }
    }

    fn at(&mut self, offset: usize) -> Position {
        if offset < self.offset {
            *self = Lines::new(self.text);
        }
        let end = offset.min(self.text.len());
        for c in self.text[self.offset..end].chars() {
            if c == '\n' {
                self.position.line = self.position.line.saturating_add(1);
                self.position.column = 1;
            } else {
                self.position.column = self.position.column.saturating_add(1);
            }
        }
        self.offset = end;
        self.position
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Word,
    Quoted,
}

/// A token: a slice of the input, exactly as written. A quoted string's text excludes its
/// quotes but keeps its backslash escapes, for the argv splitter to interpret; so every
/// character of a token sits at a known byte offset of the input, and positions are only
/// computed when an error needs one.
#[derive(Debug, Clone, Copy)]
struct Token<'a> {
    kind: Kind,
    text: &'a str,
    /// Byte offset of `text` in the input.
    offset: usize,
}

impl Token<'_> {
    /// Where the token starts (its opening quote, for a quoted string).
    fn start(&self) -> usize {
        match self.kind {
            Kind::Word => self.offset,
            Kind::Quoted => self.offset - 1,
        }
    }
}

/// An error at a byte offset of the input.
type Failure = (usize, String);

fn nul(offset: usize) -> Failure {
    (offset, "NUL character in input".to_owned())
}

fn tokenize(text: &str) -> Result<Vec<Token<'_>>, Failure> {
    let mut tokens = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some(&(i, c)) = chars.peek() {
        if c == '\0' {
            return Err(nul(i));
        }
        if c.is_whitespace() {
            chars.next();
        } else if c == '#' {
            while chars.next_if(|&(_, c)| c != '\n').is_some() {}
        } else if c == '"' {
            chars.next();
            let start = i + 1;
            let unterminated = || (i, "unterminated quoted string".to_owned());
            let end = loop {
                let Some((j, c)) = chars.next() else {
                    return Err(unterminated());
                };
                match c {
                    '"' => break j,
                    '\0' => return Err(nul(j)),
                    '\\' => match chars.next() {
                        None => return Err(unterminated()),
                        Some((k, '\0')) => return Err(nul(k)),
                        Some(_) => {}
                    },
                    _ => {}
                }
                if j + c.len_utf8() - start > MAX_TOKEN {
                    return Err((i, format!("quoted string longer than {MAX_TOKEN} bytes")));
                }
            };
            tokens.push(Token {
                kind: Kind::Quoted,
                text: &text[start..end],
                offset: start,
            });
        } else {
            let mut end = i;
            while let Some(&(j, c)) = chars.peek() {
                if c.is_whitespace() || c == '"' || c == '#' {
                    break;
                }
                if c == '\0' {
                    return Err(nul(j));
                }
                chars.next();
                end = j + c.len_utf8();
                if end - i > MAX_TOKEN {
                    return Err((i, format!("word longer than {MAX_TOKEN} bytes")));
                }
            }
            tokens.push(Token {
                kind: Kind::Word,
                text: &text[i..end],
                offset: i,
            });
        }
    }
    Ok(tokens)
}

struct Parser<'a, 'e> {
    tokens: Vec<Token<'a>>,
    at: usize,
    end: usize,
    env: &'e dyn Fn(&str) -> Option<String>,
}

impl<'a> Parser<'a, '_> {
    fn peek(&self) -> Option<Token<'a>> {
        self.tokens.get(self.at).copied()
    }

    fn next_word(&mut self, expected: &str) -> Result<Token<'a>, Failure> {
        match self.peek() {
            None => Err((
                self.end,
                format!("unexpected end of input: expected {expected}"),
            )),
            Some(t) if t.kind == Kind::Quoted => Err((
                t.start(),
                format!("expected {expected}, found a quoted string"),
            )),
            Some(t) => {
                self.at += 1;
                Ok(t)
            }
        }
    }

    fn name(&mut self) -> Result<String, Failure> {
        let t = self.next_word("a component name")?;
        let name = expand(t.text, t.offset, self.env)?;
        check_name(&name).map_err(|m| (t.offset, m))?;
        Ok(name)
    }

    /// The next directive and the offset of its keyword.
    fn directive(&mut self) -> Result<(Directive, usize), Failure> {
        let keyword = self.next_word("a directive")?;
        let offset = keyword.offset;
        let directive = match keyword.text {
            "dynamic" => {
                let name = self.name()?;
                let kind = self.next_word("Service_Object")?;
                let star_attached = match kind.text {
                    "Service_Object" => false,
                    "Service_Object*" => true,
                    "Module" | "Stream" => {
                        return Err((
                            kind.offset,
                            format!("{} components are not supported", kind.text),
                        ));
                    }
                    other => {
                        return Err((
                            kind.offset,
                            format!("expected Service_Object, found {other:?}"),
                        ));
                    }
                };
                if !star_attached {
                    let star = self.next_word("*")?;
                    if star.text != "*" {
                        return Err((star.offset, format!("expected *, found {:?}", star.text)));
                    }
                }
                let spec = self.next_word("LIBRARY:FACTORY()")?;
                let (library, factory) = self.library_spec(spec)?;
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
                return Err((offset, "stream directives are not supported".to_owned()));
            }
            other => {
                return Err((
                    offset,
                    format!(
                        "expected a directive (dynamic, static, remove, suspend, resume), found {other:?}"
                    ),
                ));
            }
        };
        Ok((directive, offset))
    }

    fn library_spec(&self, spec: Token<'a>) -> Result<(String, String), Failure> {
        let text = spec.text;
        let Some(open) = text.strip_suffix("()") else {
            return Err((
                spec.offset,
                format!("expected LIBRARY:FACTORY(), found {text:?}"),
            ));
        };
        let Some(colon) = open.rfind(':') else {
            return Err((
                spec.offset,
                format!("expected LIBRARY:FACTORY(), found {text:?} (no ':')"),
            ));
        };
        let factory = &open[colon + 1..];
        if !is_identifier(factory) {
            return Err((
                spec.offset + colon + 1,
                format!("the factory {factory:?} is not a C identifier"),
            ));
        }
        let library = expand(&open[..colon], spec.offset, self.env)?;
        if library.is_empty() {
            return Err((spec.offset, "the library name is empty".to_owned()));
        }
        if library.contains('\0') {
            return Err((spec.offset, "the library name contains NUL".to_owned()));
        }
        Ok((library, factory.to_owned()))
    }

    /// The optional `active|inactive` and `"ARGS"` that end `dynamic` and `static`.
    fn tail(&mut self) -> Result<(Activation, Vec<String>), Failure> {
        let mut activation = Activation::Active;
        if let Some(t) = self.peek()
            && t.kind == Kind::Word
        {
            match t.text {
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
            self.at += 1;
            args = split_argv(t, self.env)?;
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

/// What a `$` at byte `i` of `s` means.
enum Dollar<'s> {
    /// A literal `$` (`$$`, or a `$` not starting a variable name).
    Literal,
    /// A variable reference.
    Variable(&'s str),
}

/// Reads the `$` at byte `i` of `s` (at input offset `base`); answers what it means and the
/// byte index just after it.
fn dollar(s: &str, i: usize, base: usize) -> Result<(Dollar<'_>, usize), Failure> {
    let rest = &s[i + 1..];
    match rest.chars().next() {
        Some('$') => Ok((Dollar::Literal, i + 2)),
        Some('{') => {
            let Some(close) = rest.find('}') else {
                return Err((base + i, "unterminated ${ in variable reference".to_owned()));
            };
            let name = &rest[1..close];
            if !is_identifier(name) {
                return Err((base + i, format!("{name:?} is not a variable name")));
            }
            Ok((Dollar::Variable(name), i + 1 + close + 1))
        }
        Some(c) if c == '_' || c.is_ascii_alphabetic() => {
            let len = rest
                .find(|c: char| !(c == '_' || c.is_ascii_alphanumeric()))
                .unwrap_or(rest.len());
            Ok((Dollar::Variable(&rest[..len]), i + 1 + len))
        }
        _ => Ok((Dollar::Literal, i + 1)),
    }
}

/// Appends the value of the `$` at byte `i` of `s` to `out`; answers the index after it.
fn expand_at(
    s: &str,
    i: usize,
    base: usize,
    out: &mut String,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<usize, Failure> {
    let (what, next) = dollar(s, i, base)?;
    match what {
        Dollar::Literal => out.push('$'),
        Dollar::Variable(name) => match env(name) {
            Some(value) => out.push_str(&value),
            None => return Err((base + i, format!("the variable {name} is not defined"))),
        },
    }
    if out.len() > MAX_EXPANDED {
        return Err((
            base + i,
            format!("expansion longer than {MAX_EXPANDED} bytes"),
        ));
    }
    Ok(next)
}

/// Expands `$VAR`, `${VAR}` and `$$` in a word found at input offset `base`.
fn expand(s: &str, base: usize, env: &dyn Fn(&str) -> Option<String>) -> Result<String, Failure> {
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while let Some(at) = s[i..].find('$') {
        out.push_str(&s[i..i + at]);
        i = expand_at(s, i + at, base, &mut out, env)?;
    }
    out.push_str(&s[i..]);
    Ok(out)
}

/// Splits a quoted argument string (found at input offset `base`) into an argv, expanding
/// variables in the same pass, so that a value never splits into more arguments.
fn split_argv(t: Token<'_>, env: &dyn Fn(&str) -> Option<String>) -> Result<Vec<String>, Failure> {
    let (s, base) = (t.text, t.offset);
    let mut words: Vec<String> = Vec::new();
    let mut word: Option<String> = None;
    let mut single: Option<usize> = None;
    let mut i = 0;
    while let Some(c) = s[i..].chars().next() {
        let here = i;
        i += c.len_utf8();
        if single.is_some() {
            // Inside single quotes everything is literal, `$` included; only the escapes
            // the surrounding double-quoted string needs (`\"`, `\\`) are undone.
            let w = word.get_or_insert_with(String::new);
            match c {
                '\'' => single = None,
                '\\' if matches!(s[i..].chars().next(), Some('"' | '\\')) => {
                    w.push(char::from(s.as_bytes()[i]));
                    i += 1;
                }
                c => w.push(c),
            }
            continue;
        }
        match c {
            '\'' => {
                single = Some(here);
                word.get_or_insert_with(String::new);
            }
            '\\' => {
                let Some(next) = s[i..].chars().next() else {
                    return Err((base + here, "a backslash ends the arguments".to_owned()));
                };
                i += next.len_utf8();
                word.get_or_insert_with(String::new).push(next);
            }
            '$' => {
                let w = word.get_or_insert_with(String::new);
                i = expand_at(s, here, base, w, env)?;
            }
            c if c.is_whitespace() => {
                if let Some(w) = word.take() {
                    if words.len() == MAX_ARGS {
                        return Err((t.start(), format!("more than {MAX_ARGS} arguments")));
                    }
                    words.push(w);
                }
            }
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    if let Some(start) = single {
        return Err((
            base + start,
            "unterminated single quote in the arguments".to_owned(),
        ));
    }
    if let Some(w) = word.take() {
        if words.len() == MAX_ARGS {
            return Err((t.start(), format!("more than {MAX_ARGS} arguments")));
        }
        words.push(w);
    }
    Ok(words)
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
