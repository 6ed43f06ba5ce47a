use super::*;
use crate::inspect::{Outcome, Pipeline};
use crate::jsonrpc::{Id, Kind};
use crate::policy::Mode;
use serde_json::json;

const GH: &str = "gho_16C7e42F292c6912E7710c838347Ae178B4a";

fn jwt(claims: Value) -> String {
    let e = |v: &Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
    };
    format!(
        "{}.{}.c2lnbmF0dXJlLWJ5dGVz",
        e(&json!({"alg": "RS256", "typ": "JWT"})),
        e(&claims)
    )
}

struct Gate {
    p: Pipeline,
}

impl Gate {
    fn new(audiences: &[(&str, &str)], gateway: bool) -> Self {
        Self::with_mode(audiences, gateway, Mode::Enforce)
    }

    fn with_mode(audiences: &[(&str, &str)], gateway: bool, mode: Mode) -> Self {
        let a = audiences
            .iter()
            .map(|(s, a)| (s.to_string(), a.to_string()))
            .collect();
        Gate {
            p: Pipeline::new(
                Policy::new(mode, HashMap::new()),
                vec![Box::new(TokenReplay::new(a, gateway))],
            ),
        }
    }

    fn handed_out_by(&self, server: &str, result: Value) -> Outcome {
        let id = Id::from_string("7");
        let meta = SubjectMeta {
            direction: Direction::ServerToClient,
            server,
            kind: Kind::Result,
            method: Some("tools/call"),
            id: Some(&id),
        };
        let raw = serde_json::to_vec(&json!({"jsonrpc":"2.0","id":7,"result":result})).unwrap();
        self.p.inspect(meta, &raw).outcome
    }

    fn call(&self, server: &str, arguments: Value) -> crate::inspect::Inspection {
        let id = Id::from_string("8");
        let meta = SubjectMeta {
            direction: Direction::ClientToServer,
            server,
            kind: Kind::Request,
            method: Some("tools/call"),
            id: Some(&id),
        };
        let raw = serde_json::to_vec(&json!({"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"t","arguments":arguments}})).unwrap();
        self.p.inspect(meta, &raw)
    }

    fn blocked(&self, server: &str, arguments: Value) -> bool {
        matches!(self.call(server, arguments).outcome, Outcome::Block { .. })
    }
}

fn text(t: &str) -> Value {
    json!({"content":[{"type":"text","text":t}]})
}

// ---- attacks ----------------------------------------------------------------------------

#[test]
fn a_token_handed_out_by_one_server_is_refused_at_another() {
    let g = Gate::new(&[], true);
    g.handed_out_by(
        "github",
        json!({"access_token": GH, "token_type": "bearer"}),
    );
    let i = g.call(
        "notes",
        json!({"header": format!("Authorization: Bearer {GH}")}),
    );
    assert!(
        matches!(i.outcome, Outcome::Block { .. }),
        "{:?}",
        i.outcome
    );
    assert_eq!(i.alerts[0].rule, TOKEN_REPLAY);
    assert_eq!(i.alerts[0].class, "token replay");
    assert!(!i.alerts[0].excerpt.as_deref().unwrap_or("").contains(GH));
}

#[test]
fn an_unlabelled_copy_is_recognised_once_learned() {
    let g = Gate::new(&[], true);
    g.handed_out_by("github", text(&format!("Use Bearer {GH} for the API")));
    assert!(g.blocked("paste", json!({"content": format!("here: {GH}")})));
    assert!(g.blocked("paste", json!({"url": format!("https://x.io/?t={GH}&a=1")})));
}

#[test]
fn a_token_the_client_gave_one_server_is_refused_at_another() {
    let g = Gate::new(&[], true);
    assert!(!g.blocked("github", json!({"token": GH})));
    assert!(g.blocked("slack", json!({"token": GH})));
}

#[test]
fn jwts_are_learned_from_anywhere_in_a_result() {
    let g = Gate::new(&[], true);
    let t = jwt(json!({"iss": "https://auth.a.io", "aud": "https://a.io/mcp", "sub": "u1"}));
    g.handed_out_by("a", json!({"structuredContent": {"session": {"jwt": t}}}));
    assert!(g.blocked("b", json!({"auth": t})));
}

#[test]
fn a_jwt_for_another_audience_is_refused_when_the_audience_is_configured() {
    let g = Gate::new(&[("b", "https://b.io/mcp")], false);
    let for_a = jwt(json!({"aud": ["https://a.io/mcp"], "sub": "u1"}));
    let i = g.call("b", json!({"token": for_a}));
    assert!(matches!(i.outcome, Outcome::Block { .. }));
    assert_eq!(i.alerts[0].class, "audience mismatch");
}

// ---- benign twins -----------------------------------------------------------------------

#[test]
fn the_same_token_going_back_to_its_server_passes() {
    let g = Gate::new(&[], true);
    g.handed_out_by("github", json!({"access_token": GH}));
    assert!(!g.blocked("github", json!({"auth": format!("Bearer {GH}")})));
    assert!(!g.blocked("github", json!({"token": GH})));
}

#[test]
fn opaque_ids_are_not_tokens() {
    let g = Gate::new(&[], true);
    g.handed_out_by(
        "a",
        json!({"id": "550e8400-e29b-41d4-a716-446655440000", "nextCursor": "c2VjcmV0LWN1cnNvci0xMjM0NTY3ODkw", "sha": "a94a8fe5ccb19ba61c4c0873d391e987982fbbd3", "progressToken": "prog-abcdef0123456789abcdef"}),
    );
    assert!(!g.blocked(
        "b",
        json!({"id": "550e8400-e29b-41d4-a716-446655440000", "commit": "a94a8fe5ccb19ba61c4c0873d391e987982fbbd3", "cursor": "c2VjcmV0LWN1cnNvci0xMjM0NTY3ODkw", "p": "prog-abcdef0123456789abcdef"})
    ));
}

#[test]
fn a_jwt_for_the_right_audience_passes_and_wrap_mode_learns_nothing() {
    let g = Gate::new(&[("b", "https://b.io/mcp")], false);
    let for_b = jwt(json!({"aud": "https://b.io/mcp"}));
    assert!(!g.blocked("b", json!({"token": for_b})));
    let no_aud = jwt(json!({"sub": "u"}));
    assert!(!g.blocked("b", json!({"token": no_aud})));
    let wrap = Gate::new(&[], false);
    wrap.handed_out_by("only", json!({"access_token": GH}));
    assert!(!wrap.blocked("only", json!({"token": GH})));
}

#[test]
fn ordinary_prose_and_code_pass() {
    let g = Gate::new(&[], true);
    g.handed_out_by("a", text("Tokens are documented at /docs/tokens; a bearer token goes in the Authorization header. 東京 😀"));
    assert!(!g.blocked(
        "b",
        json!({"q": "how do bearer tokens work? fn token_for(user_id_1234567890: u64)"})
    ));
}

#[test]
fn monitor_mode_alerts_without_blocking() {
    let g = Gate::with_mode(&[], true, Mode::Monitor);
    g.handed_out_by("a", json!({"access_token": GH}));
    let i = g.call("b", json!({"token": GH}));
    assert_eq!(i.outcome, Outcome::Pass);
    assert_eq!(i.alerts[0].action, ActionTaken::Alerted);
}

#[test]
fn the_book_is_bounded() {
    let mut b = TokenBook::default();
    for i in 0..CAPACITY + 10 {
        b.learn(digest(&format!("tok{i}")), "a");
    }
    assert_eq!(b.owners.len(), CAPACITY);
    assert!(b.owner(&digest("tok0")).is_none());
    assert!(b.owner(&digest(&format!("tok{}", CAPACITY + 9))).is_some());
}

#[test]
fn a_token_labelled_in_prose_is_learned() {
    let g = Gate::new(&[], true);
    g.handed_out_by(
        "a",
        text(&format!("Logged in. access_token: {GH} (expires in 8h)")),
    );
    assert!(g.blocked("b", json!({"k": GH})));
    let g = Gate::new(&[], true);
    g.handed_out_by("a", text(&format!("see https://a.io/cb?code=1&token={GH}")));
    assert!(g.blocked("b", json!({"k": GH})));
}
