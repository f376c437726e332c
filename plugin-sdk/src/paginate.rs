//! Paging through an upstream list: each helper is an iterator of decoded
//! pages that sends the next request only when the previous page is used up,
//! so a plugin can emit and checkpoint page by page.
//!
//! ```no_run
//! use inlet_plugin_sdk::prelude::*;
//! use serde::Deserialize;
//!
//! #[derive(Deserialize)]
//! struct Page { items: Vec<serde_json::Value>, next_cursor: Option<String> }
//!
//! # fn main() -> Result<(), PluginError> {
//! // GitHub-style: follow `Link: <...>; rel="next"`.
//! for page in paginate::by_link_header::<Vec<serde_json::Value>>(http::get("https://api.example.com/items")) {
//!     emit_json("items", &page?)?;
//!     checkpoint()?;
//! }
//! // A token from each page names the next: `?cursor=...`.
//! let first = http::get("https://api.example.com/v2/items").authenticated();
//! for page in paginate::by_cursor(first, "cursor", |page: &Page| page.next_cursor.clone()) {
//!     emit_json("items", &page?.items)?;
//! }
//! // Numbered pages, until one comes back short.
//! let first = http::get("https://api.example.com/v3/items").query("per_page", "100");
//! for page in paginate::by_page_number(first, "page", 1, |page: &Vec<serde_json::Value>| page.len() < 100) {
//!     emit_json("items", &page?)?;
//! }
//! # Ok(())
//! # }
//! ```

use crate::PluginError;
use crate::http::{Request, Response};
use serde::de::DeserializeOwned;

/// Decoded pages, fetched one at a time. It ends after the last page, or
/// after the first error (which it yields).
pub struct Pages<T> {
    next: Option<Request>,
    follow: NextRequest<T>,
}

/// From a page's request, response and decoded body: the next page's request.
type NextRequest<T> = Box<dyn FnMut(&Request, &Response, &T) -> Option<Request>>;

impl<T: DeserializeOwned> Iterator for Pages<T> {
    type Item = Result<T, PluginError>;

    fn next(&mut self) -> Option<Self::Item> {
        let request = self.next.take()?;
        let page = request.clone().send_checked().and_then(|response| {
            let page: T = serde_json::from_slice(&response.body)?;
            Ok((response, page))
        });
        Some(page.map(|(response, page)| {
            self.next = (self.follow)(&request, &response, &page);
            page
        }))
    }
}

/// Follow the `Link` header's `rel="next"` URL until there is none.
pub fn by_link_header<T: DeserializeOwned>(first: Request) -> Pages<T> {
    Pages {
        next: Some(first),
        follow: Box::new(|request, response, _| {
            next_link(response).map(|target| request.clone().with_url(resolve(&request.url(), &target)))
        }),
    }
}

/// Send `cursor` set to what `next_cursor` reads from each page, until it
/// reads nothing, an empty string, or the cursor it was just given (an
/// upstream that repeats itself would otherwise be paged forever).
pub fn by_cursor<T: DeserializeOwned>(
    first: Request,
    cursor: &str,
    next_cursor: impl Fn(&T) -> Option<String> + 'static,
) -> Pages<T> {
    let cursor = cursor.to_string();
    let mut last: Option<String> = None;
    Pages {
        next: Some(first),
        follow: Box::new(move |request, _, page| {
            let token = next_cursor(page).filter(|t| !t.is_empty() && last.as_ref() != Some(t))?;
            last = Some(token.clone());
            Some(request.clone().set_query(&cursor, token))
        }),
    }
}

/// Send `page` = `start`, `start + 1`, ... until `is_last` says a page was
/// the last: shorter than the page size, or empty (an upstream that answers
/// past the end with full pages would otherwise be paged forever).
pub fn by_page_number<T: DeserializeOwned>(
    first: Request,
    page: &str,
    start: u32,
    is_last: impl Fn(&T) -> bool + 'static,
) -> Pages<T> {
    let name = page.to_string();
    let mut number = start;
    Pages {
        next: Some(first.set_query(&name, start.to_string())),
        follow: Box::new(move |request, _, page| {
            if is_last(page) {
                return None;
            }
            number += 1;
            Some(request.clone().set_query(&name, number.to_string()))
        }),
    }
}

/// The `rel="next"` target of a response's `Link` headers (RFC 8288), as
/// written (it may be relative).
pub fn next_link(response: &Response) -> Option<String> {
    let mut headers = response.headers.iter().filter(|(name, _)| name.eq_ignore_ascii_case("link"));
    headers.find_map(|(_, value)| next_in(value))
}

/// One header's links: `<target>; param; param, <target>; ...`. Targets are
/// read between the angle brackets, so a comma inside one does not split it.
fn next_in(header: &str) -> Option<String> {
    let mut rest = header;
    while let Some(open) = rest.find('<') {
        let close = open + rest[open..].find('>')?;
        let target = &rest[open + 1..close];
        let after = &rest[close + 1..];
        let params_end = after.find('<').unwrap_or(after.len());
        let is_next = after[..params_end].split([';', ',']).any(|param| {
            let Some((key, value)) = param.split_once('=') else { return false };
            key.trim().eq_ignore_ascii_case("rel")
                && value.trim().trim_matches('"').split_whitespace().any(|rel| rel.eq_ignore_ascii_case("next"))
        });
        if is_next {
            return Some(target.to_string());
        }
        rest = &after[params_end..];
    }
    None
}

/// `target` against the URL of the request it came with (RFC 3986, 5.2).
fn resolve(base: &str, target: &str) -> String {
    // A scheme (letters, then letters, digits, `+`, `-`, `.`) up to `:`.
    let scheme = target.split_once(':').map(|(scheme, _)| scheme).filter(|scheme| {
        scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    });
    if scheme.is_some() {
        return target.to_string();
    }
    // `https:`, then `//host`, then the path, query and fragment.
    let scheme_end = base.find("://").map_or(0, |at| at + 1);
    if let Some(network_path) = target.strip_prefix("//") {
        return format!("{}//{network_path}", &base[..scheme_end]);
    }
    let authority_end = base.find("://").map_or(0, |at| {
        let after = at + 3;
        base[after..].find(['/', '?', '#']).map_or(base.len(), |end| after + end)
    });
    let (origin, rest) = base.split_at(authority_end);
    let base_path = &rest[..rest.find(['?', '#']).unwrap_or(rest.len())];
    if target.starts_with('?') || target.starts_with('#') {
        return format!("{origin}{base_path}{target}");
    }
    let (target_path, after_path) = target.split_at(target.find(['?', '#']).unwrap_or(target.len()));
    let merged = match target_path.starts_with('/') {
        true => target_path.to_string(),
        false => format!("{}{target_path}", &base_path[..base_path.rfind('/').map_or(0, |at| at + 1)]),
    };
    format!("{origin}{}{after_path}", without_dot_segments(&merged))
}

/// A path with its `.` and `..` segments applied.
fn without_dot_segments(path: &str) -> String {
    let mut kept: Vec<&str> = Vec::new();
    for segment in path.trim_start_matches('/').split('/') {
        match segment {
            "." => {}
            ".." => {
                kept.pop();
            }
            segment => kept.push(segment),
        }
    }
    let directory = path.ends_with("/.") || path.ends_with("/..");
    format!("/{}{}", kept.join("/"), if directory { "/" } else { "" })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_link(value: &str) -> Response {
        Response { status: 200, headers: vec![("Link".into(), value.into())], body: Vec::new() }
    }

    #[test]
    fn the_next_link_is_found_among_others() {
        let github = r#"<https://api.github.com/x?page=3>; rel="next", <https://api.github.com/x?page=9>; rel="last""#;
        assert_eq!(next_link(&with_link(github)).as_deref(), Some("https://api.github.com/x?page=3"));
        assert_eq!(next_link(&with_link(r#"<https://a.example/p2>; rel="prev""#)), None);
        assert_eq!(next_link(&with_link("<https://a.example/n>;rel=next")).as_deref(), Some("https://a.example/n"));
        let comma = r#"<https://a.example/x?ids=1,2&page=2>; rel="next""#;
        assert_eq!(next_link(&with_link(comma)).as_deref(), Some("https://a.example/x?ids=1,2&page=2"));
        let second_header = Response {
            status: 200,
            headers: vec![
                ("link".into(), r#"<https://a.example/1>; rel="first""#.into()),
                ("link".into(), r#"<https://a.example/3>; rel="next""#.into()),
            ],
            body: Vec::new(),
        };
        assert_eq!(next_link(&second_header).as_deref(), Some("https://a.example/3"));
    }

    #[test]
    fn relative_links_resolve_against_the_request() {
        assert_eq!(
            resolve("https://a.example/v1/items?page=1", "/v1/items?page=2"),
            "https://a.example/v1/items?page=2"
        );
        assert_eq!(resolve("https://a.example/v1/items?page=1", "items?page=2"), "https://a.example/v1/items?page=2");
        assert_eq!(resolve("https://a.example/v1/items", "https://b.example/x"), "https://b.example/x");
        assert_eq!(resolve("https://a.example/v1/items?page=1", "?page=2"), "https://a.example/v1/items?page=2");
        assert_eq!(resolve("https://a.example/v1/items?page=1", "//cdn.example/x"), "https://cdn.example/x");
        assert_eq!(resolve("https://a.example/v1/items", "../v2/items?page=2"), "https://a.example/v2/items?page=2");
        assert_eq!(resolve("https://a.example/v1/items", "./more"), "https://a.example/v1/more");
        assert_eq!(resolve("https://a.example", "items?page=2"), "https://a.example/items?page=2");
        assert_eq!(resolve("https://a.example?x=1", "?page=2"), "https://a.example?page=2");
        assert_eq!(
            resolve("https://a.example/v1/search", "/v1/search?next=https://a.example/x&page=2"),
            "https://a.example/v1/search?next=https://a.example/x&page=2"
        );
        assert_eq!(resolve("https://a.example/v1/search", "?u=a:b"), "https://a.example/v1/search?u=a:b");
    }
}
