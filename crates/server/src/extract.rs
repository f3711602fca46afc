//! Reading requests: bodies, JSON, path segments and query strings.
//!
//! axum's `Json`, `Query` and `Path` extractors answer bad input with their own
//! plain-text rejections. Tephra promises one error format and errors that name the
//! field to fix (`[3].value`), so bodies are read as bytes and parsed here, and
//! query strings are parsed by hand against the parameters each route accepts.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use base64::Engine;
use serde::de::{DeserializeOwned, IgnoredAny, SeqAccess, Visitor};
use serde::Deserialize;
use serde_path_to_error::Segment;
use tephra_core::{validate_id, EventTypes, ValidationError, MAX_ID_BYTES};

use crate::config::RecommendSettings;
use crate::error::ApiError;
use crate::state::AppState;

/// The raw request body, read up to `server.max_body_bytes`.
///
/// Over the limit (whether announced by `Content-Length` or found while reading a
/// chunked body) the answer is 413 `body_too_large` in the usual error format.
pub struct RawBody(pub Bytes);

/// A router state that knows the configuration (for the body limit).
pub trait Configured {
    /// The configuration requests are served with.
    fn configuration(&self) -> &crate::config::Config;
}

impl Configured for AppState {
    fn configuration(&self) -> &crate::config::Config {
        self.config()
    }
}

impl Configured for crate::tenants::Tenants {
    fn configuration(&self) -> &crate::config::Config {
        self.config()
    }
}

impl<S: Configured + Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Bytes::from_request(req, state).await {
            Ok(bytes) => Ok(Self(bytes)),
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError::BodyTooLarge {
                    limit: state.configuration().server.max_body_bytes,
                })
            }
            Err(rejection) => Err(ApiError::MalformedJson(format!(
                "the request body could not be read: {}",
                rejection.body_text()
            ))),
        }
    }
}

/// One id from the request path, percent-decoded.
pub struct IdPath(pub String);

impl<S: Send + Sync> FromRequestParts<S> for IdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<String>::from_request_parts(parts, state)
            .await
            .map(|Path(id)| Self(id))
            .map_err(|rejection| {
                ApiError::InvalidPath(format!(
                    "the id in the path is not valid: {}",
                    rejection.body_text()
                ))
            })
    }
}

/// Two ids from the request path (`/{tenant}/keys/{id}`), percent-decoded.
pub struct IdPair(pub String, pub String);

impl<S: Send + Sync> FromRequestParts<S> for IdPair {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<(String, String)>::from_request_parts(parts, state)
            .await
            .map(|Path((a, b))| Self(a, b))
            .map_err(|rejection| {
                ApiError::InvalidPath(format!(
                    "the ids in the path are not valid: {}",
                    rejection.body_text()
                ))
            })
    }
}

/// A request body holding one element or an array of them.
#[derive(Debug)]
pub struct Batch<T> {
    /// The elements, in request order.
    pub items: Vec<T>,
    /// Whether the body was an array; only then do error fields carry an index.
    pub is_array: bool,
}

impl<T> Batch<T> {
    /// Prefixes an error about element `index` with its position, for arrays.
    pub fn locate(&self, index: usize, err: ValidationError) -> ValidationError {
        if self.is_array {
            err.at_index(index)
        } else {
            err
        }
    }

    /// The path of `field` in element `index`: `[3].item_id` or, for a single
    /// object, `item_id`.
    pub fn field_path(&self, index: usize, field: &str) -> String {
        if self.is_array {
            format!("[{index}].{field}")
        } else {
            field.to_owned()
        }
    }

    /// Runs `check` on every element and returns the first failure, located.
    pub fn check_each(
        &self,
        check: impl Fn(&T) -> Result<(), ValidationError>,
    ) -> Result<(), ApiError> {
        for (index, item) in self.items.iter().enumerate() {
            check(item).map_err(|e| self.locate(index, e))?;
        }
        Ok(())
    }
}

/// Parses a body holding one `T` or an array of at most `max_batch` of them.
///
/// Valid input is parsed once, directly. Only on failure is the body read again:
/// first for its syntax and length (so that text that is not JSON, or an
/// oversized batch, is reported as such before any element), then with path
/// tracking to name the element and field at fault.
pub fn parse_batch<T: DeserializeOwned>(
    body: &[u8],
    max_batch: usize,
) -> Result<Batch<T>, ApiError> {
    let text = utf8(body)?;
    if !text.trim_start().starts_with('[') {
        return Ok(Batch {
            items: vec![parse_one_text(text)?],
            is_array: false,
        });
    }
    let too_large = |len| ApiError::BatchTooLarge {
        len,
        max: max_batch,
    };
    match serde_json::from_str::<Vec<T>>(text) {
        Ok(items) if items.len() > max_batch => Err(too_large(items.len())),
        Ok(items) => Ok(Batch {
            items,
            is_array: true,
        }),
        Err(fast_err) => {
            let ElementCount(len) = serde_json::from_str(text).map_err(|e| json_error(&e, None))?;
            if len > max_batch {
                return Err(too_large(len));
            }
            Err(explain::<Vec<T>>(text, &fast_err))
        }
    }
}

/// Parses a body holding exactly one `T`.
pub fn parse_one<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    parse_one_text(utf8(body)?)
}

fn utf8(body: &[u8]) -> Result<&str, ApiError> {
    std::str::from_utf8(body).map_err(|e| {
        ApiError::InvalidUtf8(format!(
            "the request body is not valid UTF-8 (first bad byte at offset {}); send JSON as UTF-8",
            e.valid_up_to()
        ))
    })
}

fn parse_one_text<T: DeserializeOwned>(text: &str) -> Result<T, ApiError> {
    serde_json::from_str(text).map_err(|fast_err| explain::<T>(text, &fast_err))
}

/// The error to report for `text`, which failed to parse as `T` with `fast_err`.
///
/// Slow, only for bad input. Text that is not JSON at all is reported as such,
/// even when its shape would fail earlier (`{"a": 1} trailing`); JSON of the
/// wrong shape is parsed again with path tracking to find where.
fn explain<T: DeserializeOwned>(text: &str, fast_err: &serde_json::Error) -> ApiError {
    if let Err(syntax) = serde_json::from_str::<IgnoredAny>(text) {
        return json_error(&syntax, None);
    }
    let mut de = serde_json::Deserializer::from_str(text);
    match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Err(e) => json_error(e.inner(), Some(e.path())),
        Ok(_) => json_error(fast_err, None),
    }
}

/// Maps a serde_json error, and where it happened, to the API's error.
fn json_error(err: &serde_json::Error, path: Option<&serde_path_to_error::Path>) -> ApiError {
    use serde_json::error::Category;
    let message = err.to_string();
    let mut field = path.and_then(format_path);
    match err.classify() {
        Category::Data => {
            // `missing field `x``: the path points at the object; name the field.
            if let Some(missing) = backticked(&message, "missing field `") {
                field = Some(match field {
                    Some(p) => format!("{p}.{missing}"),
                    None => missing.to_owned(),
                });
            }
            ApiError::InvalidField { field, message }
        }
        // Valid JSON syntax but a value no number type holds (1e400).
        Category::Syntax if message.starts_with("number out of range") => ApiError::InvalidField {
            field,
            message: format!("{message}: numbers must be finite 64-bit values"),
        },
        Category::Syntax | Category::Eof | Category::Io => {
            ApiError::MalformedJson(format!("the request body is not valid JSON: {message}"))
        }
    }
}

/// `[1].attributes.k[2]`, or `None` for the top level.
fn format_path(path: &serde_path_to_error::Path) -> Option<String> {
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Unknown => break,
        }
    }
    (!out.is_empty()).then_some(out)
}

fn backticked<'a>(message: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = message.strip_prefix(prefix)?;
    rest.split_once('`').map(|(name, _)| name)
}

/// Number of elements of a JSON array, read without building them.
struct ElementCount(usize);

impl<'de> Deserialize<'de> for ElementCount {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Count;
        impl<'de> Visitor<'de> for Count {
            type Value = ElementCount;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an array")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ElementCount, A::Error> {
                let mut n = 0;
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    n += 1;
                }
                Ok(ElementCount(n))
            }
        }
        d.deserialize_seq(Count)
    }
}

/// The query string of one request, checked against the parameters its route accepts.
#[derive(Debug, Default)]
pub struct QueryParams {
    pairs: Vec<(String, String)>,
}

impl QueryParams {
    /// Decodes `raw` (form encoding) and refuses parameters not in `allowed`.
    pub fn parse(raw: Option<&str>, allowed: &[&str]) -> Result<Self, ApiError> {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(raw.unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        if let Some((name, _)) = pairs.iter().find(|(k, _)| !allowed.contains(&k.as_str())) {
            let accepted = if allowed.is_empty() {
                "none".to_owned()
            } else {
                allowed.join(", ")
            };
            return Err(ApiError::query(
                name,
                format!(
                    "unknown query parameter `{}`; this route accepts: {accepted}",
                    name.escape_debug()
                ),
            ));
        }
        Ok(Self { pairs })
    }

    /// Every value of a repeatable parameter, in order.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.pairs
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value of a parameter that may appear at most once.
    pub fn single<'a>(&'a self, name: &'a str) -> Result<Option<&'a str>, ApiError> {
        let mut values = self.all(name);
        let first = values.next();
        if values.next().is_some() {
            return Err(ApiError::query(
                name,
                format!("`{name}` may be given only once"),
            ));
        }
        Ok(first)
    }

    /// A whole number in `min..=max`, or `default` when absent.
    pub fn number(
        &self,
        name: &str,
        default: usize,
        min: usize,
        max: usize,
    ) -> Result<usize, ApiError> {
        let Some(text) = self.single(name)? else {
            return Ok(default);
        };
        let range = || format!("`{name}` must be a whole number from {min} to {max}");
        let value: usize = text.parse().map_err(|_| {
            ApiError::query(name, format!("{}, got `{}`", range(), text.escape_debug()))
        })?;
        if !(min..=max).contains(&value) {
            return Err(ApiError::query(name, format!("{}, got {value}", range())));
        }
        Ok(value)
    }
}

/// Parameters of the ranked lists (`/v1/popular`, `/v1/trending`, `/v1/latest`)
/// and of `/v1/recommend`.
#[derive(Debug, Clone, PartialEq)]
pub struct RankParams {
    /// How many items.
    pub n: usize,
    /// How many top items to skip.
    pub offset: usize,
    /// Categories that must all be on an item.
    pub categories: Vec<String>,
    /// Item ids never to return (only `/v1/recommend`).
    pub exclude: Vec<String>,
}

impl RankParams {
    /// Parameters of the ranked lists.
    pub fn for_list(raw: Option<&str>, settings: &RecommendSettings) -> Result<Self, ApiError> {
        Self::parse(raw, settings, &["n", "offset", "category"])
    }

    fn parse(
        raw: Option<&str>,
        settings: &RecommendSettings,
        allowed: &[&str],
    ) -> Result<Self, ApiError> {
        Self::from_query(&QueryParams::parse(raw, allowed)?, settings)
    }

    fn from_query(q: &QueryParams, settings: &RecommendSettings) -> Result<Self, ApiError> {
        let max_n = settings.max_n;
        let n = q.number("n", settings.default_n, 1, max_n)?;
        let offset = q.number("offset", 0, 0, max_n)?;
        if n + offset > max_n {
            return Err(ApiError::query(
                "offset",
                format!("`offset` + `n` must be at most {max_n} (got {offset} + {n}); deeper pages are not ranked"),
            ));
        }
        let categories: Vec<String> = q.all("category").map(str::to_owned).collect();
        if let Some(bad) = categories
            .iter()
            .find(|c| validate_id("category", c).is_err())
        {
            return Err(ApiError::query(
                "category",
                format!(
                    "`category` must be 1–{MAX_ID_BYTES} bytes without control characters, got `{}`",
                    bad.escape_debug()
                ),
            ));
        }
        let exclude: Vec<String> = q.all("exclude").map(str::to_owned).collect();
        if let Some(err) = exclude
            .iter()
            .find_map(|id| validate_id("exclude", id).err())
        {
            return Err(ApiError::query("exclude", err.message));
        }
        Ok(Self {
            n,
            offset,
            categories,
            exclude,
        })
    }
}

/// Parameters of the pipeline routes (`/v1/recommend/{user_id}`,
/// `/v1/items/{id}/similar`): the ranked-list parameters plus the scene, the
/// pagination session and `explain`.
#[derive(Debug, Clone, PartialEq)]
pub struct PipelineParams {
    /// `n`, `offset`, `category`, `exclude`.
    pub rank: RankParams,
    /// The scene to rank with; the route's default when absent.
    pub scene: Option<String>,
    /// Continue this pagination session.
    pub request_id: Option<String>,
    /// Whether `offset` was given (it may not be combined with `request_id`).
    pub offset_given: bool,
    /// Return each item's sources and score parts.
    pub explain: bool,
}

impl PipelineParams {
    /// Parses the query string of a pipeline route.
    pub fn parse(raw: Option<&str>, settings: &RecommendSettings) -> Result<Self, ApiError> {
        let q = QueryParams::parse(
            raw,
            &[
                "n",
                "offset",
                "category",
                "exclude",
                "scene",
                "request_id",
                "explain",
            ],
        )?;
        let rank = RankParams::from_query(&q, settings)?;
        let scene = q.single("scene")?.map(str::to_owned);
        if let Some(scene) = &scene {
            validate_id("scene", scene).map_err(|e| ApiError::query("scene", e.message))?;
        }
        let request_id = q.single("request_id")?.map(str::to_owned);
        if let Some(id) = &request_id {
            validate_id("request_id", id).map_err(|e| ApiError::query("request_id", e.message))?;
        }
        let explain = match q.single("explain")? {
            None | Some("false") | Some("0") => false,
            Some("true") | Some("1") | Some("") => true,
            Some(other) => {
                return Err(ApiError::query(
                    "explain",
                    format!(
                        "`explain` must be true or false, got `{}`",
                        other.escape_debug()
                    ),
                ))
            }
        };
        Ok(Self {
            rank,
            scene,
            request_id,
            offset_given: q.single("offset")?.is_some(),
            explain,
        })
    }
}

/// Largest page of `GET /v1/items` and `GET /v1/users`.
pub const MAX_PAGE_LIMIT: usize = 1000;
/// Page size when `limit` is not given.
pub const DEFAULT_PAGE_LIMIT: usize = 100;

/// Parameters of the paged listings: `limit` and an opaque `cursor`.
#[derive(Debug, Clone, PartialEq)]
pub struct PageParams {
    /// Page size.
    pub limit: usize,
    /// Id after which the page starts (decoded from the cursor).
    pub after: Option<String>,
}

impl PageParams {
    /// Parses `limit` and `cursor`.
    pub fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        let q = QueryParams::parse(raw, &["limit", "cursor"])?;
        let limit = q.number("limit", DEFAULT_PAGE_LIMIT, 1, MAX_PAGE_LIMIT)?;
        let after = q.single("cursor")?.map(decode_cursor).transpose()?;
        Ok(Self { limit, after })
    }
}

/// The opaque cursor that continues a listing after `last_id`.
///
/// It is the id in URL-safe base64: opaque so that clients do not build cursors
/// themselves (the encoding may change), yet stateless for the server.
pub fn encode_cursor(last_id: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(last_id)
}

fn decode_cursor(cursor: &str) -> Result<String, ApiError> {
    let bad = || {
        ApiError::query(
            "cursor",
            "`cursor` is not a cursor returned by this API; pass `next_cursor` as is",
        )
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| bad())?;
    let id = String::from_utf8(bytes).map_err(|_| bad())?;
    validate_id("cursor", &id).map_err(|_| bad())?;
    Ok(id)
}

/// Parameters of `GET /v1/users/{id}/events`.
#[derive(Debug, Clone, PartialEq)]
pub struct EventListParams {
    /// Most events to return.
    pub limit: usize,
    /// Only events of this type.
    pub event_type: Option<String>,
}

impl EventListParams {
    /// Parses `limit` and `type` (which must be a configured event type).
    pub fn parse(raw: Option<&str>, types: &EventTypes) -> Result<Self, ApiError> {
        let q = QueryParams::parse(raw, &["limit", "type"])?;
        let limit = q.number("limit", DEFAULT_PAGE_LIMIT, 1, MAX_PAGE_LIMIT)?;
        let event_type = q.single("type")?.map(str::to_owned);
        if let Some(t) = &event_type {
            if types.classify(t).is_none() {
                return Err(ApiError::query(
                    "type",
                    format!(
                        "unknown event type `{}`; configured types are {}",
                        t.escape_debug(),
                        types.all().collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
        }
        Ok(Self { limit, event_type })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tephra_core::{Event, Item};

    fn field_of(err: &ApiError) -> Option<&str> {
        err.field()
    }

    #[test]
    fn batch_of_one_or_many() {
        let one: Batch<Item> = parse_batch(br#" {"id":"a"}"#, 10).unwrap();
        assert!(!one.is_array);
        assert_eq!(one.items.len(), 1);
        let many: Batch<Item> = parse_batch(b"\n [{\"id\":\"a\"},{\"id\":\"b\"}]", 10).unwrap();
        assert!(many.is_array);
        assert_eq!(many.items[1].id, "b");
        let empty: Batch<Item> = parse_batch(b"[]", 10).unwrap();
        assert!(empty.items.is_empty());
    }

    #[test]
    fn syntax_errors_are_malformed_json_with_position() {
        for body in [
            &b"{\"id\":"[..],
            b"",
            b"[{\"id\":\"a\"},",
            b"{\"id\":\"a\"} x",
            b"nul",
            b"{\"title\":1} x",
        ] {
            let err = parse_batch::<Item>(body, 10).unwrap_err();
            assert_eq!(err.status_and_code().1, "malformed_json", "{body:?}");
            assert!(err.to_string().contains("line 1 column"), "{err}");
        }
    }

    #[test]
    fn shape_errors_name_the_field_and_index() {
        let cases: [(&[u8], &str); 6] = [
            (br#"[{"id":"a"},{"id":"b","hidden":"yes"}]"#, "[1].hidden"),
            (br#"[{"id":"a"},{"title":"no id"}]"#, "[1].id"),
            (
                br#"[{"id":"a"},{"id":"b"},{"id":"c","categoires":[]}]"#,
                "[2].categoires",
            ),
            (br#"{"id":"a","tags":[1]}"#, "tags[0]"),
            (br#"{"title":"x"}"#, "id"),
            (br#"[{"id":"a"},7]"#, "[1]"),
        ];
        for (body, field) in cases {
            let err = parse_batch::<Item>(body, 10).unwrap_err();
            assert_eq!(err.status_and_code().1, "invalid_field", "{err}");
            assert_eq!(field_of(&err), Some(field), "{err}");
        }
    }

    #[test]
    fn out_of_range_numbers_are_field_errors() {
        let body = br#"[{"user_id":"u","item_id":"i","type":"click"},{"user_id":"u","item_id":"i","type":"click","value":1e400}]"#;
        let err = parse_batch::<Event>(body, 10).unwrap_err();
        assert_eq!(err.status_and_code().1, "invalid_field");
        assert_eq!(field_of(&err), Some("[1].value"));
    }

    #[test]
    fn invalid_utf8_is_refused() {
        let err = parse_batch::<Item>(b"{\"id\":\"\xff\"}", 10).unwrap_err();
        assert_eq!(
            err.status_and_code(),
            (StatusCode::BAD_REQUEST, "invalid_utf8")
        );
    }

    #[test]
    fn batch_length_is_checked_before_elements() {
        let err = parse_batch::<Item>(br#"[{"id":"a"},{"id":"b"},{"bad":1}]"#, 2).unwrap_err();
        assert_eq!(err, ApiError::BatchTooLarge { len: 3, max: 2 });
    }

    #[test]
    fn locate_prefixes_only_arrays() {
        let err = ValidationError::field("invalid_id", "id", "bad");
        let single = Batch {
            items: vec![()],
            is_array: false,
        };
        let array = Batch {
            items: vec![()],
            is_array: true,
        };
        assert_eq!(single.locate(0, err.clone()).field.as_deref(), Some("id"));
        assert_eq!(array.locate(4, err).field.as_deref(), Some("[4].id"));
        assert_eq!(array.field_path(2, "item_id"), "[2].item_id");
        assert_eq!(single.field_path(2, "item_id"), "item_id");
    }

    fn settings() -> RecommendSettings {
        RecommendSettings {
            trending_half_life_hours: 24.0,
            default_n: 10,
            max_n: 100,
        }
    }

    #[test]
    fn rank_params_defaults_and_repeats() {
        let p = RankParams::for_list(None, &settings()).unwrap();
        assert_eq!((p.n, p.offset), (10, 0));
        let p = PipelineParams::parse(
            Some("n=5&offset=3&category=a&category=b%20c&exclude=x&exclude=y&scene=home&explain=true"),
            &settings(),
        )
        .unwrap();
        assert!(p.explain && p.offset_given);
        assert_eq!(p.scene.as_deref(), Some("home"));
        let p = p.rank;
        assert_eq!((p.n, p.offset), (5, 3));
        assert_eq!(p.categories, ["a", "b c"]);
        assert_eq!(p.exclude, ["x", "y"]);
    }

    #[test]
    fn rank_params_refuse_bad_values_naming_the_parameter() {
        let cases = [
            ("n=0", "n"),
            ("n=101", "n"),
            ("n=-1", "n"),
            ("n=abc", "n"),
            ("n=", "n"),
            ("n=1&n=2", "n"),
            ("offset=x", "offset"),
            ("n=60&offset=50", "offset"),
            ("category=", "category"),
            ("category=a%0Ab", "category"),
            ("exclude=x", "exclude"),
            ("limit=5", "limit"),
        ];
        for (raw, param) in cases {
            let err = RankParams::for_list(Some(raw), &settings()).unwrap_err();
            assert_eq!(
                err.status_and_code(),
                (StatusCode::BAD_REQUEST, "invalid_query"),
                "{raw}"
            );
            assert_eq!(err.field(), Some(param), "{raw}: {err}");
        }
        let err = PipelineParams::parse(Some(&format!("exclude={}", "x".repeat(257))), &settings())
            .unwrap_err();
        assert_eq!(err.field(), Some("exclude"));
        for (raw, param) in [
            ("explain=yes", "explain"),
            ("scene=", "scene"),
            ("request_id=a&request_id=b", "request_id"),
        ] {
            let err = PipelineParams::parse(Some(raw), &settings()).unwrap_err();
            assert_eq!(err.field(), Some(param), "{raw}");
        }
    }

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let cursor = encode_cursor("item/ü 1");
        let p = PageParams::parse(Some(&format!("cursor={cursor}&limit=3"))).unwrap();
        assert_eq!(
            p,
            PageParams {
                limit: 3,
                after: Some("item/ü 1".into())
            }
        );
        assert_eq!(PageParams::parse(None).unwrap().limit, DEFAULT_PAGE_LIMIT);
        for raw in [
            "cursor=***",
            "cursor=",
            "limit=0",
            "limit=1001",
            "limit=1&limit=2",
            "n=3",
        ] {
            let err = PageParams::parse(Some(raw)).unwrap_err();
            assert_eq!(err.status_and_code().1, "invalid_query", "{raw}");
        }
    }

    #[test]
    fn event_list_params_check_the_type() {
        let types = EventTypes::default();
        let p = EventListParams::parse(Some("type=click&limit=7"), &types).unwrap();
        assert_eq!(
            p,
            EventListParams {
                limit: 7,
                event_type: Some("click".into())
            }
        );
        let err = EventListParams::parse(Some("type=teleport"), &types).unwrap_err();
        assert_eq!(err.field(), Some("type"));
        assert!(err.to_string().contains("click"));
    }
}
