use super::*;

#[test]
fn error_details_travel_as_data_to_our_client_only() {
    use crate::error::Detail;
    let err = crate::credentials::mfa::no_tty("arn:aws:iam::1:mfa/me");
    // The original's v1 answer: no extension field at all.
    let v1 = Response::from_error("r", false, 500, &err);
    let line = String::from_utf8(v1.to_line()).unwrap();
    assert_eq!(
        line,
        format!(
            "{{\"version\":1,\"request_id\":\"r\",\"ok\":false,\"error\":{{\"code\":500,\"message\":{}}}}}\n",
            serde_json::to_string(&err.message).unwrap()
        )
    );
    // Ours: the detail, read back as data, not parsed out of the message.
    let ext = Response::from_error("r", true, 500, &err);
    let back: Response = serde_json::from_slice(&ext.to_line()).unwrap();
    let got = back.error();
    assert_eq!(
        got.detail,
        Some(Detail::MfaRequired {
            serial: "arn:aws:iam::1:mfa/me".into()
        })
    );
    assert_eq!(
        crate::credentials::mfa::serial_of(&got),
        Some("arn:aws:iam::1:mfa/me")
    );
    let mut renamed = got.clone();
    renamed.message = "reworded".into();
    assert_eq!(
        crate::credentials::mfa::serial_of(&renamed),
        Some("arn:aws:iam::1:mfa/me"),
        "the wording is free to change"
    );
}

#[test]
fn defaults_and_unknown_fields() {
    let r = Envelope::parse(br#"{"request_id":"x","action":"list"}"#).unwrap();
    assert_eq!(r.version, 1);
    assert!(r.request == Request::List {});
    assert!(Envelope::parse(br#"{"request_id":"x","action":"list","extra":1}"#).is_err());
    assert!(Envelope::parse(b"not json").is_err());
    assert!(Envelope::parse(br#"{"version":2,"request_id":"x","action":"list"}"#).is_err());
}

#[test]
fn payload_fields_of_the_wrong_type_read_as_absent() {
    let r = Envelope::parse(
        br#"{"request_id":"x","action":"credentials","payload":{"config":1,"autoadd":"yes","min_remaining_seconds":1.5}}"#,
    )
    .unwrap();
    assert!(r.caller.extended);
    assert!(
        r.request
            == Request::Credentials {
                config: None,
                autoadd: false,
                min_remaining_seconds: 0
            }
    );
    assert_eq!(r.request.session(), Some(""));
    let r = Envelope::parse(br#"{"request_id":"x","action":"nope"}"#).unwrap();
    assert_eq!(r.request.action(), "nope");
}

#[test]
fn a_request_survives_its_wire_form() {
    let e = Envelope::new(
        Caller {
            extended: true,
            config_dir: Some("/c".into()),
            context: Some(Value::Null),
            context_ref: Some("ab".into()),
            resolving: Some(vec!["a".into(), "b".into()]),
        },
        Request::Share {
            config: Some("prod".into()),
            socket: Some("/s".into()),
            whoami: true,
            uid: Some(WireUid::Id(7)),
        },
    );
    let line = e.to_line();
    assert!(Envelope::parse(&line[..line.len() - 1]).unwrap() == e);
}

#[test]
fn one_table_both_ways() {
    assert_eq!(code_of(Kind::Usage), CONFLICT);
    assert_eq!(code_of(Kind::Config), BAD_REQUEST);
    assert_eq!(code_of(Kind::Daemon), INTERNAL);
    assert_eq!(kind_of(NOT_FOUND), Kind::Config);
    assert_eq!(kind_of(FORBIDDEN), Kind::Daemon);
    assert_eq!(kind_of(INTERNAL), Kind::Auth);
}

#[test]
fn absent_fields_are_omitted() {
    let ok = String::from_utf8(Response::ok("id", None).to_line()).unwrap();
    assert_eq!(ok, "{\"version\":1,\"request_id\":\"id\",\"ok\":true}\n");
    let err = String::from_utf8(Response::err("id", 404, "nope").to_line()).unwrap();
    assert_eq!(
        err,
        "{\"version\":1,\"request_id\":\"id\",\"ok\":false,\"error\":{\"code\":404,\"message\":\"nope\"}}\n"
    );
}
