use super::*;

fn parse(text: &str) -> Ini {
    Ini::parse(text, Path::new("/etc/aws/config"), FileKind::Config).unwrap()
}

fn value<'a>(e: &Effective<'a>, key: &str) -> Option<&'a str> {
    e.settings.get(key).map(|e| e.value.as_str())
}

#[test]
fn default_section_keys_are_inherited_and_overridden() {
    let ini = parse(
        "[profile dev]\nrole_arn = arn:dev\n[DEFAULT]\nregion = eu-west-2\nsource_profile = base\n\
         [profile base]\nregion = us-east-1\n[sso-session corp]\nsso_region = x\n",
    );
    let g = ini.gather();
    let names: Vec<&str> = g.profiles.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["dev", "base"], "[DEFAULT] is no profile");
    let dev = &g.profiles[0];
    assert_eq!(value(dev, "region"), Some("eu-west-2"));
    assert_eq!(value(dev, "source_profile"), Some("base"));
    assert_eq!(dev.settings["region"].first_line, 4, "where it came from");
    assert_eq!(value(&g.profiles[1], "region"), Some("us-east-1"));
    assert_eq!(value(&g.sso_sessions[0], "region"), Some("eu-west-2"));
    // Case matters: [default] is a profile, [Default] nothing, [DEFAULT] everyone's.
    let g2 = parse("[Default]\nregion = a\n[default]\noutput = json\n");
    let g2 = g2.gather();
    assert_eq!(g2.profiles.len(), 1);
    assert_eq!(value(&g2.profiles[0], "region"), None);
}

#[test]
fn continuation_lines_nested_values_and_their_lines() {
    let ini = parse(
        "[default]\ns3 =\n    max_concurrent_requests = 20\n\n  # a comment\n    addressing_style = path ; why\n\
         region = eu-west-1\ncli_pager = less\n  -R\n\n",
    );
    let s = &ini.sections[0];
    let s3 = &s.entries[0];
    assert_eq!(s3.key, "s3");
    assert_eq!(
        s3.value,
        "\nmax_concurrent_requests = 20\n\naddressing_style = path"
    );
    assert_eq!((s3.first_line, s3.last_line), (2, 6));
    assert_eq!(s3.lines, [2, 3, 6]);
    assert_eq!(s.entries[1].value, "eu-west-1");
    assert_eq!((s.entries[1].first_line, s.entries[1].last_line), (7, 7));
    assert_eq!(s.entries[2].value, "less\n-R");
    // An indented line right after a header is a key (nothing to continue).
    let ini = parse("[default]\n  region = x\n    y\nout = z\n");
    let e = &ini.sections[0].entries;
    assert_eq!((e[0].key.as_str(), e[0].value.as_str()), ("region", "x\ny"));
    assert_eq!(e[1].key, "out");
}

#[test]
fn colons_case_and_comments() {
    let ini = parse(
        "# top\n; also\n[ profile  dev ]   # trailing\nRole_Arn: arn:aws:iam::1:role/x\n\
         sso_start_url = https://x/start#frag ; comment\nempty = # nothing\nhash =#not-a-comment\n\
         spaced = a # b\n  ;indented comment\n",
    );
    let g = ini.gather();
    let dev = &g.profiles[0];
    assert_eq!(dev.name, "dev");
    assert_eq!(value(dev, "role_arn"), Some("arn:aws:iam::1:role/x"));
    assert_eq!(value(dev, "sso_start_url"), Some("https://x/start#frag"));
    assert_eq!(value(dev, "empty"), Some(""));
    assert_eq!(value(dev, "hash"), Some("#not-a-comment"));
    assert_eq!(value(dev, "spaced"), Some("a"));
    assert_eq!(dev.line, 3);
}

#[test]
fn profile_default_wins_over_default_and_duplicates_merge() {
    let ini = parse(
        "[default]\nregion = a\noutput = json\n[profile default]\nregion = b\n\
         [profile x]\nregion = 1\n[profile \"x\"]\noutput = text\n[profile x]\nregion = 2\n",
    );
    let g = ini.gather();
    let names: Vec<&str> = g.profiles.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["default", "x"]);
    let d = &g.profiles[0];
    assert_eq!((value(d, "region"), value(d, "output")), (Some("b"), None));
    assert_eq!(d.line, 4);
    let x = &g.profiles[1];
    assert_eq!(
        (value(x, "region"), value(x, "output")),
        (Some("2"), Some("text"))
    );
    assert_eq!(x.settings["region"].first_line, 11);
    // In the credentials file every section is a profile, by its whole header.
    let creds = Ini::parse(
        "[DEFAULT]\nregion = r\n[profile default]\na = 1\n[default]\nb = 2\n",
        Path::new("c"),
        FileKind::Credentials,
    )
    .unwrap();
    let g = creds.gather();
    let names: Vec<&str> = g.profiles.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["profile default", "default"]);
    assert_eq!(value(&g.profiles[1], "region"), Some("r"));
}

#[test]
fn what_headers_name() {
    let c = FileKind::Config;
    assert_eq!(named("default", c), Named::Profile("default".into()));
    assert_eq!(named("profile \t dev", c), Named::Profile("dev".into()));
    assert_eq!(named("profile 'a b'", c), Named::Profile("a b".into()));
    assert_eq!(named("profile a b", c), Named::Other);
    assert_eq!(named("profiledev", c), Named::Other);
    assert_eq!(named("profile", c), Named::Other);
    assert_eq!(
        named("sso-session corp", c),
        Named::SsoSession("corp".into())
    );
    assert_eq!(named("services s", c), Named::Services("s".into()));
    assert_eq!(named("DEFAULT", c), Named::Defaults);
    assert_eq!(named("preview", c), Named::Other);
    let k = FileKind::Credentials;
    assert_eq!(
        named("profile dev", k),
        Named::Profile("profile dev".into())
    );
    assert_eq!(named("DEFAULT", k), Named::Defaults);
}

#[test]
fn bad_lines_are_errors_naming_file_and_line() {
    let err =
        |text: &str| Ini::parse(text, Path::new("/etc/aws/config"), FileKind::Config).unwrap_err();
    let e = err("# c\n\nregion = x\n[default]\n");
    assert_eq!(e.exit_code(), 3);
    assert_eq!(
        e.message,
        "/etc/aws/config:3: `region` is set before any [section] header"
    );
    assert_eq!(
        e.hint.as_deref(),
        Some("fix line 3 of /etc/aws/config (or point AWS_CONFIG_FILE at another file)")
    );
    let e = err("[default]\nregion = x\njust words\n");
    assert!(
        e.message.starts_with("/etc/aws/config:3: neither"),
        "{}",
        e.message
    );
    let e = err("[profile dev\nregion = x\n");
    assert!(
        e.message
            .starts_with("/etc/aws/config:1: a section header must end")
    );
    let e = err("[default]junk\n");
    assert!(e.message.starts_with("/etc/aws/config:1: a section header"));
    let e = err("[ ]\n");
    assert_eq!(e.message, "/etc/aws/config:1: an empty section header");
    let e = err("[default]\n= x\n");
    assert!(e.message.starts_with("/etc/aws/config:2: neither"));
    // A secret in a bad line is never repeated.
    let e = err("aws_secret_access_key = SECRET\n");
    assert!(!e.message.contains("SECRET"), "{}", e.message);
}

#[test]
fn lines_end_as_python_reads_them() {
    assert_eq!(split_lines("a\r\nb\rc\nd"), ["a\r\n", "b\r", "c\n", "d"]);
    let ini = parse("[default]\r\nregion = x\rcredential_process = y\r\n");
    let e = &ini.sections[0].entries;
    assert_eq!(e.len(), 2);
    assert_eq!(
        (e[1].key.as_str(), e[1].first_line),
        ("credential_process", 3)
    );
}

#[test]
fn secrets_stay_out_of_debug() {
    let ini = parse(
        "[default]\naws_secret_access_key = SECRET1\naws_session_token = SECRET2\nregion = shown\n",
    );
    let shown = format!("{ini:?} {:?}", ini.gather());
    assert!(!shown.contains("SECRET"), "{shown}");
    assert!(shown.contains("shown"), "{shown}");
}

#[test]
fn only_regular_files_up_to_1_mib_are_read_and_a_fifo_never_hangs() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    assert_eq!(read_text(&missing), Ok(None));
    let ini = Ini::load(&missing, FileKind::Config).unwrap();
    assert!(!ini.exists && ini.sections.is_empty());

    let fifo = dir.path().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let f = fifo.clone();
    std::thread::spawn(move || tx.send(Ini::load(&f, FileKind::Config)));
    let e = rx
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("reading a FIFO must not block")
        .unwrap_err();
    assert!(
        e.message.contains("a FIFO, not a regular file"),
        "{}",
        e.message
    );
    assert!(
        e.message.contains(&fifo.display().to_string()),
        "{}",
        e.message
    );

    let big = dir.path().join("big");
    let mut text = "[default]\n".to_string();
    text.push_str(&"#".repeat(MAX_FILE_BYTES as usize - text.len() - 1));
    text.push('\n');
    std::fs::write(&big, &text).unwrap();
    assert!(Ini::load(&big, FileKind::Config).unwrap().exists);
    text.push('\n');
    std::fs::write(&big, &text).unwrap();
    let e = Ini::load(&big, FileKind::Config).unwrap_err();
    assert!(e.message.ends_with("larger than 1 MiB"), "{}", e.message);

    let dir_path = dir.path().to_path_buf();
    assert!(read_text(&dir_path).unwrap_err().contains("a directory"));
    std::fs::write(&big, b"[default]\nregion = \xff\n").unwrap();
    assert_eq!(read_text(&big), Err("not UTF-8 text".to_string()));
}
