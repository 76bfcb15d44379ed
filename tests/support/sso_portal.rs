//! A fake IAM Identity Center portal on wiremock (ListAccounts, ListAccountRoles,
//! GetRoleCredentials), strict as the real one is about what botocore's service model
//! says: the method and path, the `x-amz-sso_bearer_token` header, the query fields
//! (`next_token`, `max_result`, `account_id`, `role_name`) and page tokens it issued.
//! Anything else gets the portal's 400 or 401. Pages hold two items, so every list of
//! three or more takes several calls. And a user with an `[sso-session]` and a token in
//! the AWS CLI's cache, to point elhaz at it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use wiremock::{Request, Respond, ResponseTemplate};

use super::env::TestEnv;
use super::text::sha1_hex;

/// The access token the fake accepts.
pub const SSO_TOKEN: &str = "sso-access-token-not-a-secret-in-tests";

/// Items per page.
const PAGE: usize = 2;

#[derive(Clone, Debug, Default)]
pub struct PortalState {
    /// (account id, account name), in the order the portal lists them.
    pub accounts: Vec<(String, String)>,
    /// account id → role names.
    pub roles: BTreeMap<String, Vec<String>>,
    /// Answer every call with this status (and no AWS error body) when set.
    pub fail: Option<u16>,
    /// Answer ListAccountRoles after this long.
    pub roles_delay: Option<Duration>,
    /// How long every answer takes (a real portal's latency), 429s included.
    pub all_delay: Option<Duration>,
    /// When each ListAccountRoles call arrived.
    pub roles_arrivals: Vec<Instant>,
    /// Items per page, when not the default two.
    pub page: Option<usize>,
    /// A token bucket: above its rate, a call gets 429 TooManyRequestsException.
    pub limit: Option<Bucket>,
    /// After this many calls answered, every call gets 429 (a portal that stays throttled).
    pub throttle_after: Option<usize>,
    /// Every call whose number is a multiple of this gets 429, however slowly it comes.
    pub throttle_every: Option<usize>,
    /// Calls answered (not throttled), and calls throttled.
    pub answered: usize,
    pub throttled: usize,
}

/// `per_second` tokens a second, at most `burst` saved up.
#[derive(Clone, Debug)]
pub struct Bucket {
    pub per_second: f64,
    pub burst: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn take(&mut self) -> bool {
        let now = Instant::now();
        let earned = now.duration_since(self.last).as_secs_f64() * self.per_second;
        self.tokens = (self.tokens + earned).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

pub struct FakePortal {
    pub server: wiremock::MockServer,
    pub state: Arc<Mutex<PortalState>>,
}

impl FakePortal {
    pub async fn start(accounts: &[(&str, &str, &[&str])]) -> FakePortal {
        let server = wiremock::MockServer::start().await;
        let state = Arc::new(Mutex::new(PortalState::default()));
        let fake = FakePortal { server, state };
        fake.set(accounts);
        wiremock::Mock::given(wiremock::matchers::any())
            .respond_with(PortalResponder(fake.state.clone()))
            .mount(&fake.server)
            .await;
        fake
    }

    /// Replaces what the portal lists: (account id, account name, roles).
    pub fn set(&self, accounts: &[(&str, &str, &[&str])]) {
        let mut s = self.state.lock().unwrap();
        s.accounts = accounts
            .iter()
            .map(|(id, name, _)| (id.to_string(), name.to_string()))
            .collect();
        s.roles = accounts
            .iter()
            .map(|(id, _, roles)| {
                (
                    id.to_string(),
                    roles.iter().map(|r| r.to_string()).collect(),
                )
            })
            .collect();
    }

    /// `n` accounts (ids from 100000000000, names `acct-00001`…), each with `roles`,
    /// listed `page` items a page.
    pub fn many(&self, n: usize, roles: &[&str], page: usize) {
        let mut s = self.state.lock().unwrap();
        s.accounts = (0..n)
            .map(|i| {
                (
                    (100_000_000_000u64 + i as u64).to_string(),
                    format!("acct-{i:05}"),
                )
            })
            .collect();
        let roles: Vec<String> = roles.iter().map(|r| r.to_string()).collect();
        s.roles = s
            .accounts
            .iter()
            .map(|(id, _)| (id.clone(), roles.clone()))
            .collect();
        s.page = Some(page);
    }

    /// Lists the same accounts, and each account's roles, in the reverse order (the
    /// portal's order is not stable).
    pub fn reverse(&self) {
        let mut s = self.state.lock().unwrap();
        s.accounts.reverse();
        for roles in s.roles.values_mut() {
            roles.reverse();
        }
    }

    /// Throttles above `per_second` calls a second, with `burst` calls saved up.
    pub fn limit(&self, per_second: f64, burst: f64) {
        self.state.lock().unwrap().limit = Some(Bucket {
            per_second,
            burst,
            tokens: burst,
            last: Instant::now(),
        });
    }

    /// Every `n`th call gets 429, besides what the bucket refuses.
    pub fn throttle_every(&self, n: usize) {
        self.state.lock().unwrap().throttle_every = Some(n);
    }

    /// Every call after the next `n` gets 429.
    pub fn throttle_after(&self, n: usize) {
        let mut s = self.state.lock().unwrap();
        s.throttle_after = Some(s.answered + n);
    }

    /// (calls answered, calls throttled).
    pub fn counts(&self) -> (usize, usize) {
        let s = self.state.lock().unwrap();
        (s.answered, s.throttled)
    }

    /// Every answer takes `d`.
    pub fn delay_all(&self, d: Duration) {
        self.state.lock().unwrap().all_delay = Some(d);
    }

    pub fn delay_roles(&self, d: Duration) {
        self.state.lock().unwrap().roles_delay = Some(d);
    }

    /// The most ListAccountRoles calls that arrived within any `window`: while each
    /// answer takes longer than `window`, that many were in flight at once.
    pub fn most_roles_calls_within(&self, window: Duration) -> usize {
        let mut t = self.state.lock().unwrap().roles_arrivals.clone();
        t.sort();
        (0..t.len())
            .map(|i| t[i..].iter().take_while(|x| **x - t[i] < window).count())
            .max()
            .unwrap_or(0)
    }

    /// How many ListAccountRoles calls arrived within `window` of the first.
    pub fn first_roles_calls_within(&self, window: Duration) -> usize {
        let mut t = self.state.lock().unwrap().roles_arrivals.clone();
        t.sort();
        t.first()
            .map_or(0, |f| t.iter().take_while(|x| **x - *f < window).count())
    }

    pub fn fail_with(&self, status: Option<u16>) {
        self.state.lock().unwrap().fail = status;
    }

    pub fn uri(&self) -> String {
        self.server.uri()
    }

    /// The requests the portal received to `path`, as (query map, bearer token).
    pub async fn calls(&self, path: &str) -> Vec<(BTreeMap<String, String>, Option<String>)> {
        self.server
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .filter(|r| r.url.path() == path)
            .map(|r| {
                (
                    r.url.query_pairs().into_owned().collect(),
                    header(r, "x-amz-sso_bearer_token"),
                )
            })
            .collect()
    }
}

fn header(r: &Request, name: &str) -> Option<String> {
    r.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn error(status: u16, kind: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .insert_header("x-amzn-ErrorType", kind)
        .set_body_json(serde_json::json!({ "message": message }))
}

/// A page of `items` from the `next_token` (an offset the fake issued as `page-N`).
fn page(
    items: Vec<serde_json::Value>,
    q: &BTreeMap<String, String>,
    page_size: Option<usize>,
) -> Result<(Vec<serde_json::Value>, Option<String>), &'static str> {
    let start = match q.get("next_token") {
        None => 0,
        Some(t) => match t
            .strip_prefix("page-")
            .and_then(|n| n.parse::<usize>().ok())
        {
            Some(n) if n < items.len() => n,
            _ => return Err("bad next_token"),
        },
    };
    let size = match q.get("max_result") {
        None => page_size.unwrap_or(PAGE),
        Some(m) => match m.parse::<usize>() {
            Ok(m) if (1..=100).contains(&m) => m.min(page_size.unwrap_or(PAGE)),
            _ => return Err("bad max_result"),
        },
    };
    let end = (start + size).min(items.len());
    let next = (end < items.len()).then(|| format!("page-{end}"));
    Ok((items[start..end].to_vec(), next))
}

/// A page as the portal sends it: nextToken only when there is a next page.
fn listing(key: &str, list: Vec<serde_json::Value>, next: Option<String>) -> serde_json::Value {
    let mut v = serde_json::json!({ key: list });
    if let Some(n) = next {
        v["nextToken"] = n.into();
    }
    v
}

struct PortalResponder(Arc<Mutex<PortalState>>);

impl PortalResponder {
    /// The portal's 429 when the bucket is empty or the portal stays throttled, and
    /// the count of what was answered.
    fn throttle(&self, req: &Request) -> Option<ResponseTemplate> {
        if !req.url.path().starts_with("/assignment/") {
            return None;
        }
        let mut s = self.0.lock().unwrap();
        let stuck = s.throttle_after.is_some_and(|n| s.answered >= n);
        let empty = s.limit.as_mut().is_some_and(|b| !b.take());
        let nth = s
            .throttle_every
            .is_some_and(|n| (s.answered + s.throttled + 1).is_multiple_of(n));
        if stuck || empty || nth {
            s.throttled += 1;
            return Some(error(429, "TooManyRequestsException", "Rate exceeded"));
        }
        s.answered += 1;
        None
    }
}

impl Respond for PortalResponder {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let answer = self.answer(req);
        match self.0.lock().unwrap().all_delay {
            Some(d) => answer.set_delay(d),
            None => answer,
        }
    }
}

impl PortalResponder {
    fn answer(&self, req: &Request) -> ResponseTemplate {
        if req.url.path() == "/assignment/roles" {
            self.0.lock().unwrap().roles_arrivals.push(Instant::now());
        }
        if let Some(too_many) = self.throttle(req) {
            return too_many;
        }
        let s = self.0.lock().unwrap().clone();
        if let Some(status) = s.fail {
            return ResponseTemplate::new(status).set_body_string("internal failure");
        }
        if req.method.as_str() != "GET" {
            return error(404, "ResourceNotFoundException", "no such operation");
        }
        let q: BTreeMap<String, String> = req.url.query_pairs().into_owned().collect();
        let allowed: &[&str] = match req.url.path() {
            "/assignment/accounts" => &["next_token", "max_result"],
            "/assignment/roles" => &["next_token", "max_result", "account_id"],
            "/federation/credentials" => &["role_name", "account_id"],
            _ => return error(404, "ResourceNotFoundException", "no such operation"),
        };
        if let Some(k) = q.keys().find(|k| !allowed.contains(&k.as_str())) {
            return error(
                400,
                "InvalidRequestException",
                &format!("unknown field {k}"),
            );
        }
        if header(req, "x-amz-sso_bearer_token").as_deref() != Some(SSO_TOKEN) {
            return error(
                401,
                "UnauthorizedException",
                "Session token not found or invalid",
            );
        }
        let body = match req.url.path() {
            "/assignment/accounts" => {
                let items = s
                    .accounts
                    .iter()
                    .map(|(id, name)| {
                        serde_json::json!({
                            "accountId": id,
                            "accountName": name,
                            "emailAddress": format!("{id}@example.com"),
                        })
                    })
                    .collect();
                match page(items, &q, s.page) {
                    Ok((list, next)) => listing("accountList", list, next),
                    Err(e) => return error(400, "InvalidRequestException", e),
                }
            }
            "/assignment/roles" => {
                let Some(id) = q.get("account_id") else {
                    return error(400, "InvalidRequestException", "account_id is required");
                };
                let Some(roles) = s.roles.get(id) else {
                    return error(404, "ResourceNotFoundException", "no such account");
                };
                let items = roles
                    .iter()
                    .map(|r| serde_json::json!({ "roleName": r, "accountId": id }))
                    .collect();
                match page(items, &q, s.page) {
                    Ok((list, next)) => listing("roleList", list, next),
                    Err(e) => return error(400, "InvalidRequestException", e),
                }
            }
            _ => {
                let (Some(id), Some(role)) = (q.get("account_id"), q.get("role_name")) else {
                    return error(400, "InvalidRequestException", "account_id and role_name");
                };
                if !s.roles.get(id).is_some_and(|r| r.contains(role)) {
                    return error(403, "ForbiddenException", "No access");
                }
                let expiration = (SystemTime::now() + Duration::from_secs(3600))
                    .duration_since(UNIX_EPOCH)
                    .unwrap()
                    .as_millis() as u64;
                serde_json::json!({ "roleCredentials": {
                    "accessKeyId": format!("ASIAPORTAL{id}"),
                    "secretAccessKey": "portal-secret",
                    "sessionToken": format!("portal-token-{role}"),
                    "expiration": expiration,
                }})
            }
        };
        let ok = ResponseTemplate::new(200).set_body_json(body);
        match s.roles_delay {
            Some(d) if req.url.path() == "/assignment/roles" => ok.set_delay(d),
            _ => ok,
        }
    }
}

/// An ISO-8601 UTC time `secs` from now, as the AWS CLI writes `expiresAt`.
pub fn iso_in(secs: i64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let t = time::OffsetDateTime::from_unix_timestamp(now + secs).unwrap();
    t.format(time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
    ))
    .unwrap()
}

/// A user with `[sso-session corp]` (region eu-west-1) in ~/.aws/config, a token for
/// it in the AWS CLI's cache valid for `valid_for` seconds (negative: expired), and
/// the portal at `portal`.
pub fn sso_user(portal: &str, valid_for: i64) -> TestEnv {
    let mut t = TestEnv::new();
    t.set("AWS_ENDPOINT_URL_SSO", portal);
    t.write_aws_config(SSO_SESSION);
    write_token(&t, "corp", valid_for);
    t
}

/// The config file's `[sso-session corp]`.
pub const SSO_SESSION: &str = "[sso-session corp]\nsso_start_url = https://corp.awsapps.com/start\nsso_region = eu-west-1\nsso_registration_scopes = sso:account:access\n";

/// Writes the cache file of session `name` as the AWS CLI does.
pub fn write_token(t: &TestEnv, name: &str, valid_for: i64) {
    let dir = t.home.join(".aws/sso/cache");
    std::fs::create_dir_all(&dir).unwrap();
    let body = serde_json::json!({
        "startUrl": "https://corp.awsapps.com/start",
        "region": "eu-west-1",
        "accessToken": SSO_TOKEN,
        "expiresAt": iso_in(valid_for),
        "clientId": "client-id",
        "clientSecret": "client-secret",
        "registrationExpiresAt": iso_in(86400 * 30),
    });
    std::fs::write(
        dir.join(format!("{}.json", sha1_hex(name))),
        serde_json::to_string_pretty(&body).unwrap(),
    )
    .unwrap();
}
