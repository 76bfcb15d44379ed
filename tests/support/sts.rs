//! A fake STS on wiremock: fresh keys per call, a settable lifetime, faults, and who
//! signed each call.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Clone, Debug)]
pub enum Fault {
    None,
    /// Answer with this HTTP status and AWS error code.
    Status(u16, &'static str),
    /// Answer correctly, after this delay.
    Delay(Duration),
}

#[derive(Clone)]
pub struct StsState {
    pub lifetime: Arc<Mutex<Duration>>,
    pub fault: Arc<Mutex<Fault>>,
    pub issued: Arc<AtomicUsize>,
    /// Seconds to add to the expiry (negative: already expired on arrival).
    pub skew: Arc<Mutex<i64>>,
    /// MFA codes an AssumeRole is refused with, as AWS refuses a mistyped or reused
    /// code (403 AccessDenied, `MultiFactorAuthentication failed ...`).
    pub refused_codes: Arc<Mutex<Vec<String>>>,
}

pub struct FakeSts {
    pub server: wiremock::MockServer,
    pub state: StsState,
}

impl FakeSts {
    pub async fn start(lifetime: Duration) -> FakeSts {
        let server = wiremock::MockServer::start().await;
        let state = StsState {
            lifetime: Arc::new(Mutex::new(lifetime)),
            fault: Arc::new(Mutex::new(Fault::None)),
            issued: Arc::new(AtomicUsize::new(0)),
            skew: Arc::new(Mutex::new(0)),
            refused_codes: Arc::new(Mutex::new(Vec::new())),
        };
        wiremock::Mock::given(wiremock::matchers::method("POST"))
            .respond_with(StsResponder(state.clone()))
            .mount(&server)
            .await;
        FakeSts { server, state }
    }

    pub fn uri(&self) -> String {
        self.server.uri()
    }

    pub fn set_fault(&self, f: Fault) {
        *self.state.fault.lock().unwrap() = f;
    }

    pub fn set_lifetime(&self, d: Duration) {
        *self.state.lifetime.lock().unwrap() = d;
    }

    /// AssumeRole with any of these MFA codes is refused as AWS refuses a wrong code.
    pub fn refuse_codes(&self, codes: &[&str]) {
        *self.state.refused_codes.lock().unwrap() = codes.iter().map(|c| c.to_string()).collect();
    }

    /// Bodies of the requests whose Action is `action`.
    pub async fn calls(&self, action: &str) -> Vec<BTreeMap<String, String>> {
        self.server
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .map(|r| form(&String::from_utf8_lossy(&r.body)))
            .filter(|f| f.get("Action").map(String::as_str) == Some(action))
            .collect()
    }
}

impl FakeSts {
    /// Who signed each request whose Action is `action`, in order: the access key id
    /// of the Authorization header's `Credential=`.
    pub async fn signers(&self, action: &str) -> Vec<String> {
        self.server
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .filter(|r| {
                form(&String::from_utf8_lossy(&r.body))
                    .get("Action")
                    .map(String::as_str)
                    == Some(action)
            })
            .map(|r| {
                r.headers
                    .get("authorization")
                    .and_then(|h| h.to_str().ok())
                    .and_then(signer_of)
                    .unwrap_or_default()
            })
            .collect()
    }
}

/// The access key id in a SigV4 Authorization header (`Credential=KEY/date/...`).
pub fn signer_of(authorization: &str) -> Option<String> {
    let rest = authorization.split("Credential=").nth(1)?;
    Some(rest.split('/').next()?.to_string())
}

/// Parses a form-encoded body.
pub fn form(body: &str) -> BTreeMap<String, String> {
    url_pairs(body).into_iter().collect()
}

fn url_pairs(body: &str) -> Vec<(String, String)> {
    body.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("00");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

struct StsResponder(StsState);

fn iso(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let dt = time::OffsetDateTime::from_unix_timestamp(secs).unwrap();
    dt.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

impl wiremock::Respond for StsResponder {
    fn respond(&self, req: &wiremock::Request) -> wiremock::ResponseTemplate {
        let f = form(&String::from_utf8_lossy(&req.body));
        let action = f.get("Action").cloned().unwrap_or_default();
        let fault = self.0.fault.lock().unwrap().clone();
        let mut delay = None;
        match fault {
            Fault::Status(status, code) => {
                let body = format!(
                    "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type><Code>{code}</Code><Message>fake {code}</Message></Error><RequestId>r-1</RequestId></ErrorResponse>"
                );
                return wiremock::ResponseTemplate::new(status).set_body_raw(body, "text/xml");
            }
            Fault::Delay(d) => delay = Some(d),
            Fault::None => {}
        }
        if let Some(code) = f.get("TokenCode")
            && self.0.refused_codes.lock().unwrap().contains(code)
        {
            // AWS's own words for a wrong or reused code.
            let body = "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>MultiFactorAuthentication failed with invalid MFA one time pass code.</Message></Error><RequestId>r-mfa</RequestId></ErrorResponse>";
            return wiremock::ResponseTemplate::new(403).set_body_raw(body, "text/xml");
        }
        let n = self.0.issued.fetch_add(1, Ordering::SeqCst) + 1;
        let lifetime = *self.0.lifetime.lock().unwrap();
        let skew = *self.0.skew.lock().unwrap();
        let expiry = SystemTime::now() + lifetime;
        let expiry = if skew >= 0 {
            expiry + Duration::from_secs(skew as u64)
        } else {
            expiry - Duration::from_secs((-skew) as u64)
        };
        let creds = format!(
            "<Credentials><AccessKeyId>ASIAFAKE{n:012}</AccessKeyId><SecretAccessKey>fakesecret{n}xyz</SecretAccessKey><SessionToken>faketoken{n}xyz</SessionToken><Expiration>{}</Expiration></Credentials>",
            iso(expiry)
        );
        let body = match action.as_str() {
            "AssumeRole" | "AssumeRoleWithWebIdentity" | "AssumeRoleWithSAML" => {
                let role = f.get("RoleArn").cloned().unwrap_or_default();
                // SAML takes the session name from the assertion; the fake has one.
                let session = f
                    .get("RoleSessionName")
                    .cloned()
                    .unwrap_or_else(|| "saml-user".into());
                let rname = role.rsplit('/').next().unwrap_or("role");
                format!(
                    "<{action}Response xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><{action}Result>{creds}<AssumedRoleUser><AssumedRoleId>AROAFAKE:{session}</AssumedRoleId><Arn>arn:aws:sts::123456789012:assumed-role/{rname}/{session}</Arn></AssumedRoleUser></{action}Result><ResponseMetadata><RequestId>r-{n}</RequestId></ResponseMetadata></{action}Response>"
                )
            }
            "GetCallerIdentity" => format!(
                "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><GetCallerIdentityResult><Arn>arn:aws:sts::123456789012:assumed-role/Admin/fake</Arn><UserId>AROAFAKE:fake</UserId><Account>123456789012</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>r-{n}</RequestId></ResponseMetadata></GetCallerIdentityResponse>"
            ),
            _ => return wiremock::ResponseTemplate::new(400).set_body_string("unknown action"),
        };
        let t = wiremock::ResponseTemplate::new(200).set_body_raw(body, "text/xml");
        match delay {
            Some(d) => t.set_delay(d),
            None => t,
        }
    }
}

/// One call the fake answered: its action, the role it asked for, who signed it, the
/// region of the signature, the key it issued, and its form.
#[derive(Debug, Clone)]
pub struct StsCall {
    pub action: String,
    pub role: String,
    pub signer: String,
    pub region: String,
    pub issued: String,
    pub form: BTreeMap<String, String>,
}

impl FakeSts {
    /// Every call so far, in order, with the key each one issued (the fake issues
    /// `ASIAFAKE<n>` for its n-th answered POST; these tests inject no fault).
    pub async fn log(&self) -> Vec<StsCall> {
        let reqs = self.server.received_requests().await.unwrap_or_default();
        let mut n = 0;
        let mut out = Vec::new();
        for r in reqs.iter().filter(|r| r.method.as_str() == "POST") {
            n += 1;
            let f = form(&String::from_utf8_lossy(&r.body));
            let auth = r
                .headers
                .get("authorization")
                .and_then(|h| h.to_str().ok())
                .unwrap_or_default();
            let scope = auth
                .split("Credential=")
                .nth(1)
                .and_then(|s| s.split(',').next())
                .unwrap_or_default();
            let mut parts = scope.split('/');
            let signer = parts.next().unwrap_or_default().to_string();
            let region = parts.nth(1).unwrap_or_default().to_string();
            out.push(StsCall {
                action: f.get("Action").cloned().unwrap_or_default(),
                role: f
                    .get("RoleArn")
                    .map(|a| a.rsplit('/').next().unwrap_or_default().to_string())
                    .unwrap_or_default(),
                signer,
                region,
                issued: format!("ASIAFAKE{n:012}"),
                form: f,
            });
        }
        out
    }

    /// The calls from `from` on as `ROLE<-SIGNER`, where SIGNER is the role whose
    /// issued key signed the call, or the key itself when no call issued it (a source
    /// key); `GetCallerIdentity<-SIGNER` for identity calls.
    pub async fn chain_since(&self, from: usize) -> Vec<String> {
        let log = self.log().await;
        log.iter()
            .skip(from)
            .map(|c| {
                let by = log
                    .iter()
                    .find(|o| o.issued == c.signer && !o.role.is_empty())
                    .map(|o| o.role.clone())
                    .unwrap_or_else(|| c.signer.clone());
                let what = if c.role.is_empty() {
                    &c.action
                } else {
                    &c.role
                };
                format!("{what}<-{by}")
            })
            .collect()
    }

    /// How many calls the fake has answered.
    pub async fn count(&self) -> usize {
        self.log().await.len()
    }
}
