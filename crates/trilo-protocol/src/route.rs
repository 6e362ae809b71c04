//! Path-template router for the gateway: a segment trie compiled from OpenAPI path
//! templates, matching a concrete request path to one route and its path parameters.
//!
//! Matching rules, chosen so the operation whose scopes the gateway checks is the one
//! the upstream will run:
//! - The raw path is split on `/` *before* percent-decoding, so `%2F` never creates a
//!   segment; a segment that decodes to `/`, `\` or a control character is refused.
//! - `.` and `..` segments (also encoded, e.g. `%2e%2e`, or followed by `;…`), empty
//!   segments (`//`), raw `;` (Tomcat path parameters) and raw `\`, `?`, `#` are refused.
//! - One trailing slash is tolerated and ignored: `/a/b/` matches `/a/b`.
//! - Segments are compared after strict percent-decoding (a bad escape or non-UTF-8
//!   result is refused); comparison is case-sensitive.
//! - The path is matched first, the method second (as JAX-RS does): at each position a
//!   static segment beats a `prefix{p}suffix` segment, which beats a whole `{p}`
//!   segment; a branch that reaches no route at all is backtracked. If the path matches
//!   but not the method, the result is [`Lookup::MethodNotAllowed`], never a fallback to
//!   a less specific template.

use std::borrow::Cow;

/// Why a template could not be compiled.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("template does not start with '/'")]
    NotAbsolute,
    #[error("template has an empty or dot segment")]
    BadPath,
    #[error("segment {0:?} is not a literal, `{{name}}` or `literal{{name}}literal`")]
    BadSegment(String),
    #[error("parameter {0:?} appears twice")]
    DuplicateParameter(String),
    #[error("{0} is already routed for this path shape")]
    Conflict(String),
}

/// Why a request path was refused before matching.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("path does not start with '/'")]
    NotAbsolute,
    #[error("path has an empty segment")]
    EmptySegment,
    #[error("path has a '.' or '..' segment")]
    DotSegment,
    #[error("path has an invalid percent-encoding")]
    InvalidEncoding,
    #[error("path has a forbidden character")]
    ForbiddenCharacter,
}

/// A route found for a request: the value stored with it and the captured path
/// parameters (percent-decoded), in template order.
#[derive(Debug, PartialEq, Eq)]
pub struct RouteMatch<'r, 'p, T> {
    pub value: &'r T,
    pub params: Vec<(&'r str, Cow<'p, str>)>,
}

impl<T> RouteMatch<'_, '_, T> {
    /// The decoded value of path parameter `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_ref())
    }
}

/// The outcome of a lookup; `MethodNotAllowed` lets the gateway answer 405 rather than
/// 404, and `Invalid` 400.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup<'r, 'p, T> {
    Found(RouteMatch<'r, 'p, T>),
    MethodNotAllowed { allowed: Vec<&'r str> },
    NotFound,
    Invalid(PathError),
}

impl<'r, 'p, T> Lookup<'r, 'p, T> {
    pub fn found(self) -> Option<RouteMatch<'r, 'p, T>> {
        match self {
            Lookup::Found(m) => Some(m),
            _ => None,
        }
    }
}

/// A segment trie of path templates, each route carrying a value of type `T`.
#[derive(Debug)]
pub struct Router<T> {
    root: Node<T>,
}

#[derive(Debug)]
struct Node<T> {
    /// Sorted by segment, for binary search.
    statics: Vec<(Box<str>, Node<T>)>,
    /// Longest literal text first, so the most specific pattern is tried first.
    patterns: Vec<Pattern<T>>,
    param: Option<Box<Node<T>>>,
    endpoints: Vec<Endpoint<T>>,
}

#[derive(Debug)]
struct Pattern<T> {
    prefix: Box<str>,
    suffix: Box<str>,
    node: Node<T>,
}

#[derive(Debug)]
struct Endpoint<T> {
    method: Box<str>,
    /// Parameter names of this template; templates sharing a node may name them
    /// differently (Jira: `/field/{id}` DELETE, `/field/{fieldId}` PUT).
    params: Box<[Box<str>]>,
    value: T,
}

enum Seg {
    Static(String),
    Pattern(String, String),
    Param,
}

impl<T> Default for Node<T> {
    fn default() -> Self {
        Node {
            statics: Vec::new(),
            patterns: Vec::new(),
            param: None,
            endpoints: Vec::new(),
        }
    }
}

impl<T> Default for Router<T> {
    fn default() -> Self {
        Router {
            root: Node::default(),
        }
    }
}

impl<T> Router<T> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `method template`. The whole template is checked before the trie changes.
    pub fn insert(&mut self, method: &str, template: &str, value: T) -> Result<(), TemplateError> {
        let (segs, names) = parse_template(template)?;
        let mut node = &mut self.root;
        for seg in segs {
            node = match seg {
                Seg::Static(lit) => {
                    let i = match node.statics.binary_search_by(|(k, _)| (**k).cmp(&lit)) {
                        Ok(i) => i,
                        Err(i) => {
                            node.statics.insert(i, (lit.into(), Node::default()));
                            i
                        }
                    };
                    match node.statics.get_mut(i) {
                        Some((_, n)) => n,
                        None => return Err(TemplateError::BadPath),
                    }
                }
                Seg::Pattern(prefix, suffix) => {
                    let pos = node
                        .patterns
                        .iter()
                        .position(|p| *p.prefix == *prefix && *p.suffix == *suffix);
                    let i = match pos {
                        Some(i) => i,
                        None => {
                            let len = prefix.len() + suffix.len();
                            let at = node
                                .patterns
                                .iter()
                                .position(|p| p.prefix.len() + p.suffix.len() < len)
                                .unwrap_or(node.patterns.len());
                            node.patterns.insert(
                                at,
                                Pattern {
                                    prefix: prefix.into(),
                                    suffix: suffix.into(),
                                    node: Node::default(),
                                },
                            );
                            at
                        }
                    };
                    match node.patterns.get_mut(i) {
                        Some(p) => &mut p.node,
                        None => return Err(TemplateError::BadPath),
                    }
                }
                Seg::Param => node.param.get_or_insert_with(Box::default),
            };
        }
        if node.endpoints.iter().any(|e| *e.method == *method) {
            return Err(TemplateError::Conflict(format!("{method} {template}")));
        }
        node.endpoints.push(Endpoint {
            method: method.into(),
            params: names.into_iter().map(Into::into).collect(),
            value,
        });
        Ok(())
    }

    /// Finds the route for `method path`; `path` is the raw (still percent-encoded)
    /// path without query string. Method comparison is exact (RFC 9110 §9.1).
    pub fn lookup<'r, 'p>(&'r self, method: &str, path: &'p str) -> Lookup<'r, 'p, T> {
        let mut segs = match split_path(path) {
            Ok(s) => s,
            Err(e) => return Lookup::Invalid(e),
        };
        let mut caps = Vec::new();
        let Some(node) = walk(&self.root, &segs, 0, &mut caps) else {
            return Lookup::NotFound;
        };
        let Some(ep) = node.endpoints.iter().find(|e| *e.method == *method) else {
            return Lookup::MethodNotAllowed {
                allowed: node.endpoints.iter().map(|e| &*e.method).collect(),
            };
        };
        let params = ep
            .params
            .iter()
            .zip(caps)
            .map(|(name, cap)| (&**name, take_capture(&mut segs, cap)))
            .collect();
        Lookup::Found(RouteMatch {
            value: &ep.value,
            params,
        })
    }

    /// The methods routed for `path`, empty when no template matches it.
    pub fn allowed_methods(&self, path: &str) -> Vec<&str> {
        let Ok(segs) = split_path(path) else {
            return Vec::new();
        };
        walk(&self.root, &segs, 0, &mut Vec::new())
            .map(|n| n.endpoints.iter().map(|e| &*e.method).collect())
            .unwrap_or_default()
    }
}

/// A capture: segment index and byte range in the decoded segment.
type Capture = (usize, usize, usize);

fn walk<'r, T>(
    node: &'r Node<T>,
    segs: &[Cow<'_, str>],
    at: usize,
    caps: &mut Vec<Capture>,
) -> Option<&'r Node<T>> {
    let Some(seg) = segs.get(at) else {
        return (!node.endpoints.is_empty()).then_some(node);
    };
    let seg: &str = seg;
    if let Ok(i) = node.statics.binary_search_by(|(k, _)| (**k).cmp(seg))
        && let Some((_, child)) = node.statics.get(i)
        && let Some(found) = walk(child, segs, at + 1, caps)
    {
        return Some(found);
    }
    for p in &node.patterns {
        let (pre, suf) = (p.prefix.len(), p.suffix.len());
        if seg.len() > pre + suf && seg.starts_with(&*p.prefix) && seg.ends_with(&*p.suffix) {
            caps.push((at, pre, seg.len() - suf));
            if let Some(found) = walk(&p.node, segs, at + 1, caps) {
                return Some(found);
            }
            caps.pop();
        }
    }
    if let Some(child) = &node.param {
        caps.push((at, 0, seg.len()));
        if let Some(found) = walk(child, segs, at + 1, caps) {
            return Some(found);
        }
        caps.pop();
    }
    None
}

/// Moves a captured segment out of `segs` (each segment is captured at most once), so
/// a borrowed segment stays borrowed and a decoded one is not copied again.
fn take_capture<'p>(segs: &mut [Cow<'p, str>], (i, start, end): Capture) -> Cow<'p, str> {
    let Some(slot) = segs.get_mut(i) else {
        return Cow::Borrowed("");
    };
    match std::mem::replace(slot, Cow::Borrowed("")) {
        Cow::Borrowed(s) => Cow::Borrowed(s.get(start..end).unwrap_or_default()),
        Cow::Owned(s) if start == 0 && end == s.len() => Cow::Owned(s),
        Cow::Owned(s) => Cow::Owned(s.get(start..end).unwrap_or_default().to_owned()),
    }
}

fn parse_template(template: &str) -> Result<(Vec<Seg>, Vec<String>), TemplateError> {
    let rest = template
        .strip_prefix('/')
        .ok_or(TemplateError::NotAbsolute)?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let mut segs = Vec::new();
    let mut names: Vec<String> = Vec::new();
    if rest.is_empty() {
        return if template.len() <= 1 {
            Ok((segs, names))
        } else {
            Err(TemplateError::BadPath)
        };
    }
    for raw in rest.split('/') {
        let bad = || TemplateError::BadSegment(raw.to_owned());
        let (seg, name) = match (raw.find('{'), raw.find('}')) {
            (None, None) => {
                let lit = decode(raw).map_err(|_| bad())?.into_owned();
                if lit.is_empty() || is_dot_segment(&lit) {
                    return Err(TemplateError::BadPath);
                }
                (Seg::Static(lit), None)
            }
            (Some(open), Some(close)) if open < close => {
                let (prefix, name) = raw.split_at(open);
                let (name, suffix) = name.split_at(close - open);
                let name = name.strip_prefix('{').unwrap_or(name);
                let suffix = suffix.strip_prefix('}').unwrap_or(suffix);
                let nested = |s: &str| s.contains(['{', '}']);
                if name.is_empty() || nested(name) || nested(prefix) || nested(suffix) {
                    return Err(bad());
                }
                let seg = if prefix.is_empty() && suffix.is_empty() {
                    Seg::Param
                } else {
                    let p = decode(prefix).map_err(|_| bad())?.into_owned();
                    let s = decode(suffix).map_err(|_| bad())?.into_owned();
                    Seg::Pattern(p, s)
                };
                (seg, Some(name))
            }
            _ => return Err(bad()),
        };
        if let Some(name) = name {
            if names.iter().any(|n| n == name) {
                return Err(TemplateError::DuplicateParameter(name.to_owned()));
            }
            names.push(name.to_owned());
        }
        segs.push(seg);
    }
    Ok((segs, names))
}

/// Splits and decodes a request path; see the module doc for what is refused.
fn split_path(path: &str) -> Result<Vec<Cow<'_, str>>, PathError> {
    let rest = path.strip_prefix('/').ok_or(PathError::NotAbsolute)?;
    if rest.is_empty() {
        return Ok(Vec::new());
    }
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() {
        return Err(PathError::EmptySegment);
    }
    let mut out = Vec::with_capacity(8);
    for raw in rest.split('/') {
        if raw.is_empty() {
            return Err(PathError::EmptySegment);
        }
        if raw
            .bytes()
            .any(|b| matches!(b, b';' | b'\\' | b'?' | b'#') || is_control(b))
        {
            return Err(PathError::ForbiddenCharacter);
        }
        let seg = decode(raw)?;
        if seg
            .bytes()
            .any(|b| matches!(b, b'/' | b'\\') || is_control(b))
        {
            return Err(PathError::ForbiddenCharacter);
        }
        // A decoded `..;x` is still `..` to servers that strip path parameters late.
        if is_dot_segment(seg.split(';').next().unwrap_or_default()) {
            return Err(PathError::DotSegment);
        }
        out.push(seg);
    }
    Ok(out)
}

fn is_dot_segment(s: &str) -> bool {
    s == "." || s == ".."
}

fn is_control(b: u8) -> bool {
    b < 0x20 || b == 0x7f
}

/// Strict percent-decoding (RFC 3986 §2.1): every `%` must start two hex digits and the
/// result must be UTF-8. Borrows when there is nothing to decode.
fn decode(raw: &str) -> Result<Cow<'_, str>, PathError> {
    if !raw.contains('%') {
        return Ok(Cow::Borrowed(raw));
    }
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hi = bytes.get(i + 1).and_then(|c| (*c as char).to_digit(16));
            let lo = bytes.get(i + 2).and_then(|c| (*c as char).to_digit(16));
            let (Some(hi), Some(lo)) = (hi, lo) else {
                return Err(PathError::InvalidEncoding);
            };
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out)
        .map(Cow::Owned)
        .map_err(|_| PathError::InvalidEncoding)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(routes: &[(&str, &str)]) -> Router<usize> {
        let mut r = Router::new();
        for (i, (m, t)) in routes.iter().enumerate() {
            assert_eq!(r.insert(m, t, i), Ok(()), "{m} {t}");
        }
        r
    }

    fn id(r: &Router<usize>, method: &str, path: &str) -> Option<usize> {
        r.lookup(method, path).found().map(|m| *m.value)
    }

    #[test]
    fn static_segment_wins_over_param_when_both_match() {
        let r = router(&[("GET", "/issue/{key}"), ("GET", "/issue/createmeta")]);
        assert_eq!(id(&r, "GET", "/issue/createmeta"), Some(1));
        assert_eq!(id(&r, "GET", "/issue/PROJ-1"), Some(0));
    }

    #[test]
    fn static_branch_backtracks_to_param_when_it_dead_ends() {
        let r = router(&[("GET", "/a/{x}/c"), ("GET", "/a/b/d")]);
        let m = r.lookup("GET", "/a/b/c").found();
        assert_eq!(m.as_ref().map(|m| *m.value), Some(0));
        assert_eq!(m.as_ref().and_then(|m| m.param("x")), Some("b"));
    }

    #[test]
    fn pattern_segment_captures_between_literals_when_mixed() {
        let r = router(&[
            ("GET", "/f/{id}.json"),
            ("GET", "/f/{id}"),
            ("GET", "/g/pre-{x}"),
        ]);
        let m = r.lookup("GET", "/f/42.json").found();
        assert_eq!(
            m.as_ref().map(|m| (*m.value, m.param("id"))),
            Some((0, Some("42")))
        );
        assert_eq!(id(&r, "GET", "/f/.json"), Some(1));
        let m = r.lookup("GET", "/g/pre-%41b").found();
        assert_eq!(m.as_ref().and_then(|m| m.param("x")), Some("Ab"));
        assert_eq!(id(&r, "GET", "/g/pre-"), None);
    }

    #[test]
    fn method_mismatch_reports_allowed_methods_when_path_exists() {
        let r = router(&[
            ("GET", "/issue/{key}"),
            ("PUT", "/issue/{key}"),
            ("GET", "/issue/createmeta"),
        ]);
        // JAX-RS picks the path first: PUT /issue/createmeta is not editIssue.
        assert_eq!(
            r.lookup("PUT", "/issue/createmeta"),
            Lookup::MethodNotAllowed {
                allowed: vec!["GET"]
            }
        );
        assert_eq!(r.allowed_methods("/issue/X-1"), vec!["GET", "PUT"]);
        assert_eq!(r.lookup("GET", "/nothing"), Lookup::NotFound);
        assert_eq!(id(&r, "get", "/issue/X-1"), None);
    }

    #[test]
    fn trailing_slash_is_ignored_when_single() {
        let r = router(&[("GET", "/a/b"), ("GET", "/")]);
        assert_eq!(id(&r, "GET", "/a/b/"), Some(0));
        assert_eq!(id(&r, "GET", "/"), Some(1));
        assert_eq!(
            r.lookup("GET", "/a/b//"),
            Lookup::Invalid(PathError::EmptySegment)
        );
        assert_eq!(
            r.lookup("GET", "//"),
            Lookup::Invalid(PathError::EmptySegment)
        );
    }

    #[test]
    fn unsafe_paths_are_refused_when_they_could_change_the_route() {
        let r = router(&[("GET", "/a/{x}"), ("GET", "/admin")]);
        for (path, err) in [
            ("a/b", PathError::NotAbsolute),
            ("", PathError::NotAbsolute),
            ("/a//b", PathError::EmptySegment),
            ("/a/..", PathError::DotSegment),
            ("/a/.", PathError::DotSegment),
            ("/a/%2e%2E", PathError::DotSegment),
            ("/a/.%2e%3Bx", PathError::DotSegment),
            ("/a/..;/admin", PathError::ForbiddenCharacter),
            ("/a/b%2Fc", PathError::ForbiddenCharacter),
            ("/a/b%5Cc", PathError::ForbiddenCharacter),
            ("/a/b\\c", PathError::ForbiddenCharacter),
            ("/a/b%00", PathError::ForbiddenCharacter),
            ("/a/b?q=1", PathError::ForbiddenCharacter),
            ("/a/b%zz", PathError::InvalidEncoding),
            ("/a/b%2", PathError::InvalidEncoding),
            ("/a/%ff", PathError::InvalidEncoding),
        ] {
            assert_eq!(r.lookup("GET", path), Lookup::Invalid(err), "{path}");
        }
    }

    #[test]
    fn encoded_segments_are_decoded_when_compared_and_captured() {
        let r = router(&[("GET", "/a/{x}"), ("GET", "/admin")]);
        assert_eq!(id(&r, "GET", "/%61dmin"), Some(1));
        let m = r.lookup("GET", "/a/caf%C3%A9%20x").found();
        assert_eq!(m.as_ref().and_then(|m| m.param("x")), Some("café x"));
        assert!(matches!(
            m.as_ref().map(|m| &m.params[0].1),
            Some(Cow::Owned(_))
        ));
        let m = r.lookup("GET", "/a/plain").found();
        assert!(matches!(
            m.as_ref().map(|m| &m.params[0].1),
            Some(Cow::Borrowed("plain"))
        ));
    }

    #[test]
    fn bad_templates_are_rejected_when_inserted() {
        let mut r: Router<()> = Router::new();
        for t in [
            "a",
            "/a/{{x}",
            "/a/{x}}",
            "/a/{",
            "/a/}",
            "/a/{}",
            "/a/{x}{y}",
            "/a/{x}-{y}",
            "/a//b",
            "/a/../b",
        ] {
            assert!(r.insert("GET", t, ()).is_err(), "{t}");
        }
        assert_eq!(
            r.insert("GET", "/a/{x}/{x}", ()),
            Err(TemplateError::DuplicateParameter("x".into()))
        );
        assert_eq!(r.insert("GET", "/b/{x}", ()), Ok(()));
        assert!(matches!(
            r.insert("GET", "/b/{y}", ()),
            Err(TemplateError::Conflict(_))
        ));
        assert_eq!(r.insert("PUT", "/b/{y}", ()), Ok(()));
    }

    #[test]
    fn param_names_follow_the_template_when_shapes_are_shared() {
        let r = router(&[("DELETE", "/field/{id}"), ("PUT", "/field/{fieldId}")]);
        let m = r.lookup("PUT", "/field/f1").found();
        assert_eq!(
            m.map(|m| m.params),
            Some(vec![("fieldId", Cow::Borrowed("f1"))])
        );
        let m = r.lookup("DELETE", "/field/f1").found();
        assert_eq!(m.map(|m| m.params), Some(vec![("id", Cow::Borrowed("f1"))]));
    }
}
