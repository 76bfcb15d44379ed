//! `elhaz eks ...`: its subcommands.

use super::*;

/// `elhaz eks ...`
#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum EksCommand {
    /// Print a kubectl ExecCredential holding an EKS token signed as NAME
    #[command(after_help = "Examples:
  elhaz eks token prod --cluster demo
  kubectl config set-credentials prod-demo --exec-api-version=client.authentication.k8s.io/v1beta1 \\
    --exec-command=elhaz --exec-arg=eks,token,prod,--cluster,demo --exec-interactive-mode=IfAvailable

kubectl runs it before each call (the exec credential plugin): the token is signed
with the session the daemon holds, so no call to AWS is made for it.")]
    Token(EksTokenArgs),

    /// Write the cluster, user and context entries of a cluster into a kubeconfig
    #[command(after_help = "Examples:
  elhaz eks kubeconfig prod --cluster demo --region eu-west-1
  elhaz eks kubeconfig prod --cluster demo --alias demo --dry-run

The user entry runs `elhaz eks token NAME --cluster CLUSTER` for kubectl. The file is
KUBECONFIG's first path, else ~/.kube/config; other entries are kept.")]
    Kubeconfig(EksKubeconfigArgs),
}

#[derive(Debug, Args)]
pub struct EksTokenArgs {
    /// The config or AWS CLI profile whose session signs the token [default: the
    /// trusted project pin of the working directory]
    #[arg(value_name = "NAME", add = Completes::Names)]
    pub name: Option<String>,

    /// The cluster's name, as EKS knows it
    #[arg(long, value_name = "CLUSTER")]
    pub cluster: String,

    /// Sign for this region's STS endpoint [default: where NAME's STS is]
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
}

#[derive(Debug, Args)]
pub struct EksKubeconfigArgs {
    /// The config or AWS CLI profile that asks EKS and signs kubectl's tokens
    #[arg(value_name = "NAME", add = Completes::Names)]
    pub name: String,

    /// The cluster's name, as EKS knows it
    #[arg(long, value_name = "CLUSTER")]
    pub cluster: String,

    /// The cluster's region [default: NAME's, else AWS_REGION]
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,

    /// The context's name [default: the cluster's ARN]
    #[arg(long, value_name = "A")]
    pub alias: Option<String>,

    /// The kubeconfig to write [default: KUBECONFIG's first path, else ~/.kube/config]
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,

    /// Print the change as a diff and write nothing
    #[arg(long)]
    pub dry_run: bool,
}
