//! `elhaz eks token NAME --cluster C`: kubectl's exec credential plugin, an
//! ExecCredential on stdout with a token signed by NAME's session; and `elhaz eks
//! kubeconfig NAME --cluster C`: the cluster, user and context entries that run it.
//! Knows nothing of how a token is signed or how a kubeconfig is parsed.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use zeroize::Zeroizing;

use super::Context;
use super::prompt::tty_available;
use crate::cli::{EksCommand, EksKubeconfigArgs, EksTokenArgs};
use crate::config::kubeconfig::{Kubeconfig, List, Node};
use crate::context::SourceContext;
use crate::credentials::eks::{self, Presign};
use crate::credentials::policy::DEFAULT_MIN_REMAINING_SECS;
use crate::credentials::{Engine, Served, StsTarget};
use crate::error::{Error, Kind, Result, display_path};
use crate::fsutil::{Unread, read_regular};

/// The ExecCredential versions kubectl asks for; v1beta1 when it does not say.
const V1BETA1: &str = "client.authentication.k8s.io/v1beta1";
const V1: &str = "client.authentication.k8s.io/v1";

/// The largest kubeconfig read.
const MAX_KUBECONFIG: u64 = 16 << 20;

pub(crate) fn run(cmd: EksCommand, ctx: &Context) -> Result<i32> {
    match cmd {
        EksCommand::Token(args) => token(&args, ctx),
        EksCommand::Kubeconfig(args) => kubeconfig(&args, ctx),
    }
}

/// NAME's session from the broker (the daemon, or this process with --no-daemon),
/// asking for an MFA code or an SSO login on the terminal only when `interactive`; and
/// the caller's context. The one place these commands meet the broker.
fn session(ctx: &Context, name: &str, interactive: bool) -> Result<Served> {
    if interactive {
        return ctx.credentials(name, DEFAULT_MIN_REMAINING_SECS);
    }
    let served = ctx
        .broker_for(name)
        .credentials_at_prompt(name, DEFAULT_MIN_REMAINING_SECS)
        .map_err(|e| without_terminal(e, name, ctx.global.no_daemon))?;
    super::relay_notes(&served);
    Ok(served)
}

/// The caller's source context (endpoints, regions, AWS files).
fn source(ctx: &Context) -> &SourceContext {
    &ctx.caller.source
}

/// An MFA code was needed and nobody could be asked: say how to give it once.
fn without_terminal(err: Error, name: &str, no_daemon: bool) -> Error {
    if err.kind != Kind::MfaRequired {
        return err;
    }
    let hint = if no_daemon {
        format!(
            "without the daemon each token needs a code: set MFA.command in the config, or drop --no-daemon and type the code once: elhaz daemon add {name}"
        )
    } else {
        format!(
            "type the code once in a terminal, and the daemon signs kubectl's tokens until the session ends: elhaz exec {name} -- kubectl ... (or elhaz use {name})"
        )
    };
    let mut e = Error::new(
        Kind::MfaRequired,
        format!("{name} needs an MFA code, and there is no terminal to ask for it on"),
    )
    .with_hint(hint);
    e.detail = err.detail;
    e
}

/// What kubectl says of this run in KUBERNETES_EXEC_INFO: the ExecCredential version
/// it reads and whether the plugin may talk to the user. Run by hand (no variable),
/// v1beta1, and a terminal if there is one.
fn exec_info() -> (&'static str, bool) {
    let Some(raw) = std::env::var_os("KUBERNETES_EXEC_INFO") else {
        return (V1BETA1, tty_available());
    };
    let info: Option<Value> = raw.to_str().and_then(|s| serde_json::from_str(s).ok());
    let interactive = info
        .as_ref()
        .and_then(|v| v.pointer("/spec/interactive"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let asked = info
        .as_ref()
        .and_then(|v| v.get("apiVersion"))
        .and_then(Value::as_str);
    let version = match asked {
        Some(V1) => V1,
        Some(V1BETA1) => V1BETA1,
        other => {
            eprintln!(
                "elhaz: warning: KUBERNETES_EXEC_INFO asks for {}; answering with {V1BETA1}",
                crate::terminal::escape_controls(other.unwrap_or("no apiVersion"))
            );
            V1BETA1
        }
    };
    (version, interactive)
}

/// `eks token`: the ExecCredential, on stdout only when all went well.
fn token(args: &EksTokenArgs, ctx: &Context) -> Result<i32> {
    let (version, interactive) = exec_info();
    // Without NAME, the trusted pin of kubectl's working directory (never the picker's
    // guess: an untrusted pin is an error with the allow command).
    let chosen = super::pin::choose(ctx, args.name.as_deref())?;
    let name = chosen.name.as_str();
    let rt = crate::broker::runtime()?;
    let mut target: StsTarget =
        rt.block_on(Engine::new(ctx.store()).sts_target(name, source(ctx)))?;
    if let Some(region) = args.region.as_ref().or(chosen.region.as_ref()) {
        target.region.clone_from(region);
    }
    let endpoint = rt.block_on(eks::sts_endpoint(&target, source(ctx)))?;
    drop(rt);
    let served = session(ctx, name, interactive)?;
    let to = Presign {
        endpoint: &endpoint,
        region: &target.region,
        cluster: &args.cluster,
    };
    let token = eks::token(&served.credentials, &to, crate::duration::now())?;
    let out = Zeroizing::new(
        json!({
            "kind": "ExecCredential",
            "apiVersion": version,
            "spec": {},
            "status": {
                "expirationTimestamp": crate::times::zulu(token.expires),
                "token": token.value(),
            },
        })
        .to_string()
            + "\n",
    );
    super::output::write_stdout(out.as_bytes())?;
    Ok(0)
}

/// `eks kubeconfig`: DescribeCluster as NAME, then the entries written (or the diff
/// shown with --dry-run).
fn kubeconfig(args: &EksKubeconfigArgs, ctx: &Context) -> Result<i32> {
    let path = kubeconfig_path(args.kubeconfig.as_deref())?;
    let shown = display_path(&path);
    let before = read_kubeconfig(&path)?;
    let mut config = Kubeconfig::parse(&before, &path)?;
    if !args.dry_run {
        crate::fsutil::check_writable(&path, Kind::Config)
            .map_err(|e| e.with_hint("write to another file: --kubeconfig PATH"))?;
    }
    let served = session(ctx, &args.name, tty_available())?;
    let src = source(ctx);
    let region = args
        .region
        .clone()
        .or(served.region.clone())
        .or_else(|| src.get("AWS_REGION").map(str::to_string))
        .or_else(|| src.get("AWS_DEFAULT_REGION").map(str::to_string))
        .ok_or_else(|| {
            Error::usage(format!(
                "no region for cluster {}: {} names none, and AWS_REGION is unset",
                args.cluster, args.name
            ))
            .with_hint(format!(
                "elhaz eks kubeconfig {} --cluster {} --region REGION",
                args.name, args.cluster
            ))
        })?;
    let cluster = crate::broker::runtime()?.block_on(eks::describe_cluster(
        &served.credentials,
        &region,
        &args.cluster,
        src,
    ))?;
    let original = config.clone();
    let context = args.alias.clone().unwrap_or_else(|| cluster.arn.clone());
    let existed = entries(&mut config, args, &cluster, &context)?;
    let after = if config == original {
        before.clone()
    } else {
        config.to_yaml()?
    };
    if args.dry_run {
        let diff = super::output::unified_diff(&before, &after, &shown, "elhaz eks kubeconfig");
        for line in diff.lines() {
            println!("{}", crate::terminal::escape_controls(line));
        }
        eprintln!("elhaz: dry run: nothing written");
        return Ok(0);
    }
    if after == before {
        eprintln!("elhaz: {shown} is up to date (context {context})");
        return Ok(0);
    }
    crate::fsutil::write_keeping_mode(&path, &after, &before)?;
    if before.lines().any(|l| l.trim_start().starts_with('#')) {
        eprintln!(
            "elhaz: note: the comments in {shown} were not kept (YAML comments are not data)"
        );
    }
    let verb = if existed { "updated" } else { "added" };
    eprintln!(
        "elhaz: {verb} context {} in {shown}",
        crate::terminal::escape_controls(&context)
    );
    Ok(0)
}

/// The cluster, user and context entries for `cluster` as `context` (the user named as
/// the context, so two NAMEs for one cluster under two aliases keep their own), the
/// context made current. Whether the context was there already.
fn entries(
    config: &mut Kubeconfig,
    args: &EksKubeconfigArgs,
    cluster: &eks::Cluster,
    context: &str,
) -> Result<bool> {
    let exe = std::env::current_exe()
        .map_err(|e| Error::other(format!("cannot find the elhaz binary's path: {e}")))?;
    let mut exec_args: Vec<Node> = ["eks", "token", &args.name, "--cluster", &args.cluster]
        .into_iter()
        .map(Node::from)
        .collect();
    if let Some(region) = &args.region {
        exec_args.extend([Node::from("--region"), Node::from(region.as_str())]);
    }
    let arn = cluster.arn.as_str();
    refuse_foreign(config, context, arn)?;
    // A namespace the context had stays.
    let namespace = config
        .get(List::Contexts, context)
        .and_then(|c| c.at(&["context", "namespace"]))
        .cloned();
    config.upsert(
        List::Clusters,
        Node::map([
            (
                "cluster",
                Node::map([
                    (
                        "certificate-authority-data",
                        cluster.certificate_authority.as_str().into(),
                    ),
                    ("server", cluster.endpoint.as_str().into()),
                ]),
            ),
            ("name", arn.into()),
        ]),
    );
    let exec = Node::map([
        ("apiVersion", V1BETA1.into()),
        ("args", Node::Seq(exec_args)),
        ("command", exe.to_string_lossy().as_ref().into()),
        ("interactiveMode", "IfAvailable".into()),
        ("provideClusterInfo", Node::Bool(false)),
    ]);
    config.upsert(
        List::Users,
        Node::map([
            ("name", context.into()),
            ("user", Node::map([("exec", exec)])),
        ]),
    );
    let mut inner = Node::map([("cluster", arn.into()), ("user", context.into())]);
    if let (Some(ns), Node::Map(m)) = (namespace, &mut inner) {
        m.insert("namespace".into(), ns);
    }
    let existed = config.upsert(
        List::Contexts,
        Node::map([("context", inner), ("name", context.into())]),
    );
    config.set_current_context(context);
    Ok(existed)
}

/// Refuses to take over a context named `context` that is another cluster's, or a user
/// of that name whose credentials are not elhaz's (a token, a certificate, another
/// plugin): other contexts may use that user, and its credentials would be lost.
fn refuse_foreign(config: &Kubeconfig, context: &str, arn: &str) -> Result<()> {
    let shown = crate::terminal::escape_controls(context);
    if let Some(c) = config.get(List::Contexts, context)
        && let Some(theirs) = c.str_at(&["context", "cluster"])
        && theirs != arn
    {
        return Err(Error::usage(format!(
            "the kubeconfig already has a context named {shown}, for cluster {}",
            crate::terminal::escape_controls(theirs)
        ))
        .with_hint("pick another name: --alias NAME"));
    }
    if let Some(u) = config.get(List::Users, context) {
        let ours = u.str_at(&["user", "exec", "command"]).is_some_and(|c| {
            std::path::Path::new(c)
                .file_name()
                .is_some_and(|f| f == "elhaz")
        }) && matches!(
            u.at(&["user", "exec", "args"]),
            Some(Node::Seq(a)) if a.first() == Some(&Node::from("eks"))
        );
        if !ours {
            return Err(Error::usage(format!(
                "the kubeconfig already has a user named {shown} with credentials that are not elhaz's; other contexts may use them"
            ))
            .with_hint("pick another name: --alias NAME"));
        }
    }
    Ok(())
}

/// The kubeconfig to write: --kubeconfig, else KUBECONFIG's first path (as kubectl
/// writes new entries to it), else ~/.kube/config.
fn kubeconfig_path(flag: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = flag {
        return Ok(p.to_path_buf());
    }
    if let Some(list) = std::env::var_os("KUBECONFIG")
        && let Some(first) = std::env::split_paths(&list).find(|p| !p.as_os_str().is_empty())
    {
        return Ok(first);
    }
    Ok(crate::fsutil::home_dir()?.join(".kube/config"))
}

/// The kubeconfig's text, "" when there is none yet.
fn read_kubeconfig(path: &Path) -> Result<String> {
    let shown = display_path(path);
    match read_regular(path, MAX_KUBECONFIG, |_| Ok(())) {
        Ok((bytes, _)) => String::from_utf8(bytes).map_err(|_| {
            Error::config(format!(
                "{shown}: not a kubeconfig: the file is not UTF-8 text"
            ))
            .with_hint("write to another file: --kubeconfig PATH")
        }),
        Err(Unread::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(Unread::Io(e)) => Err(Error::io(Kind::Config, "cannot read", path, &e)),
        Err(Unread::NotRegular { kind, .. }) => Err(Error::config(format!(
            "{shown}: is {kind}, not a kubeconfig file"
        ))
        .with_hint("write to another file: --kubeconfig PATH")),
        Err(Unread::TooLarge) => Err(Error::config(format!(
            "{shown}: larger than {} MiB: not a kubeconfig",
            MAX_KUBECONFIG >> 20
        ))
        .with_hint("write to another file: --kubeconfig PATH")),
        Err(Unread::Refused(e)) => Err(e),
    }
}
