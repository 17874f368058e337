//! `qrlp migrate`, `qrlp admin bootstrap` and `qrlp admin set-plan`: database commands that work with the server
//! stopped or running (SQLite's WAL and busy timeout let both share the file; PostgreSQL
//! serialises the migrations itself).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use qrlp_config::{Config, Override};
use qrlp_store::{NewApiKeyMaterial, Plan, StoreError};

/// Exit code for a configuration that does not load or validate.
const EXIT_BAD_CONFIG: u8 = 2;

/// Where the database is: the configuration's sources plus two flags.
#[derive(Args, Debug)]
pub struct StorageArgs {
    /// Configuration file: TOML, JSON or YAML (by extension).
    #[arg(long, short = 'c', env = "QRLP_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Data directory of the embedded SQLite database [default: ./qrlp-data, or
    /// $QRLP_DATA_DIR]
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<String>,
    /// Database URL: postgres://... for PostgreSQL [default: SQLite in the data directory,
    /// or $DATABASE_URL]
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
}

impl StorageArgs {
    /// The flags as configuration overrides.
    pub fn overrides(&self) -> Vec<Override> {
        let mut flags = Vec::new();
        if let Some(dir) = &self.data_dir {
            flags.push(Override::new("storage.data_dir", dir.clone(), "--data-dir"));
        }
        if let Some(url) = &self.database_url {
            flags.push(Override::new(
                "storage.database_url",
                url.clone(),
                "--database-url",
            ));
        }
        flags
    }

    fn load(&self) -> Result<Config, ExitCode> {
        Config::load(self.config.as_deref(), &self.overrides()).map_err(|problems| {
            eprintln!("error: {problems}");
            ExitCode::from(EXIT_BAD_CONFIG)
        })
    }
}

#[derive(Args, Debug)]
pub struct MigrateArgs {
    #[command(flatten)]
    storage: StorageArgs,
}

/// Applies every pending migration.
pub fn migrate(args: MigrateArgs) -> anyhow::Result<ExitCode> {
    let config = match args.storage.load() {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    runtime()?.block_on(async {
        let store = qrlp_store::Store::open(&qrlp_server::store_config(&config))
            .await
            .context("cannot open the database")?;
        store.migrate().await.context("migration failed")?;
        println!("database {} is up to date", store.describe());
        store.close().await;
        Ok(ExitCode::SUCCESS)
    })
}

#[derive(Args, Debug)]
pub struct AdminArgs {
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Subcommand, Debug)]
enum AdminCommand {
    /// Create an organization, its owner and an API key, and print the key once.
    Bootstrap(BootstrapArgs),
    /// Change an organization's plan (operators only: the API refuses plan changes).
    SetPlan(SetPlanArgs),
}

#[derive(Args, Debug)]
struct SetPlanArgs {
    /// The organization: its id or its name.
    #[arg(value_name = "ORG")]
    org: String,
    /// The new plan.
    #[arg(value_name = "PLAN", value_parser = ["free", "starter", "professional", "enterprise"])]
    plan: String,
    #[command(flatten)]
    storage: StorageArgs,
}

#[derive(Args, Debug)]
struct BootstrapArgs {
    /// Name of the new organization (must not exist yet).
    #[arg(long, value_name = "NAME")]
    org: String,
    /// Email of the owner: an existing user is reused, otherwise one is created.
    #[arg(long, value_name = "EMAIL")]
    email: String,
    /// Display name of a new owner [default: the part of the email before @]
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// Plan of the organization.
    #[arg(long, default_value = "free", value_parser = ["free", "starter", "professional", "enterprise"])]
    plan: String,
    /// Name of the API key.
    #[arg(long, default_value = "bootstrap", value_name = "NAME")]
    key_name: String,
    #[command(flatten)]
    storage: StorageArgs,
}

pub fn admin(args: AdminArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        AdminCommand::Bootstrap(b) => bootstrap(b),
        AdminCommand::SetPlan(a) => set_plan(a),
    }
}

/// `qrlp admin set-plan ORG PLAN`: one audited store change (`organization.update`, actor
/// `system`).
fn set_plan(args: SetPlanArgs) -> anyhow::Result<ExitCode> {
    let config = match args.storage.load() {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let plan: Plan = args
        .plan
        .parse()
        .map_err(|_| anyhow::anyhow!("unknown plan {}", args.plan))?;
    runtime()?.block_on(async {
        let store = qrlp_store::Store::open(&qrlp_server::store_config(&config))
            .await
            .context("cannot open the database")?;
        store.migrate().await.context("migration failed")?;
        let found = match args.org.parse::<uuid::Uuid>() {
            Ok(id) => match store.get_organization(id).await {
                Ok(org) => Some(org),
                Err(StoreError::NotFound) => None,
                Err(e) => return Err(anyhow::Error::new(e)),
            },
            Err(_) => store.find_organization_by_name(&args.org).await?,
        };
        let Some(org) = found else {
            store.close().await;
            eprintln!("error: no organization {:?}; nothing was changed", args.org);
            return Ok(ExitCode::FAILURE);
        };
        let ctx = qrlp_store::AuditContext {
            org_id: Some(org.id),
            actor: qrlp_store::Actor::System,
            ip: None,
            user_agent: Some("qrlp admin set-plan".into()),
            request_id: None,
        };
        let updated = store
            .update_organization(&ctx, org.id, None, Some(plan))
            .await;
        store.close().await;
        let updated = updated.context("set-plan failed; nothing was changed")?;
        eprintln!(
            "organization {:?} ({}): plan {} -> {}",
            updated.name,
            updated.id,
            org.plan.as_str(),
            updated.plan.as_str()
        );
        Ok(ExitCode::SUCCESS)
    })
}

fn bootstrap(args: BootstrapArgs) -> anyhow::Result<ExitCode> {
    let config = match args.storage.load() {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    // The store's rules, so that the command and the API accept the same names.
    let org = qrlp_store::valid_name("--org", &args.org).map_err(anyhow::Error::new)?;
    let email = qrlp_store::valid_email(&args.email)
        .map_err(|e| anyhow::anyhow!("--email {:?}: {e}", args.email))?;
    let local = email.split('@').next().unwrap_or_default();
    let name = args.name.clone().unwrap_or_else(|| local.to_string());
    let plan: Plan = args
        .plan
        .parse()
        .map_err(|_| anyhow::anyhow!("unknown plan {}", args.plan))?;
    runtime()?.block_on(async {
        let store = qrlp_store::Store::open(&qrlp_server::store_config(&config))
            .await
            .context("cannot open the database")?;
        store.migrate().await.context("migration failed")?;
        let key = qrlp_store::secret::generate_api_key();
        let material = NewApiKeyMaterial {
            name: args.key_name.clone(),
            prefix: key.prefix.clone(),
            hash: key.hash,
        };
        let result = store.bootstrap(&org, plan, &email, &name, material).await;
        store.close().await;
        match result {
            Ok(done) => {
                eprintln!(
                    "organization {:?} ({}) created on the {} plan; owner {} ({}){}",
                    done.organization.name,
                    done.organization.id,
                    done.organization.plan.as_str(),
                    done.user.email,
                    done.user.id,
                    if done.user_created {
                        ", a new user"
                    } else {
                        ", an existing user"
                    }
                );
                eprintln!(
                    "API key {:?} ({}). It is shown once, below; store it now:",
                    done.api_key.name, done.api_key.prefix
                );
                println!("{}", key.secret);
                Ok(ExitCode::SUCCESS)
            }
            Err(StoreError::Conflict(field)) if field == "name" => {
                eprintln!(
                    "error: an organization named {org:?} already exists; nothing was changed"
                );
                Ok(ExitCode::FAILURE)
            }
            Err(e) => Err(anyhow::Error::new(e).context("bootstrap failed; nothing was changed")),
        }
    })
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}
