//! The classic builder (`POST /build` without BuildKit): a Dockerfile run
//! step by step, each step an image. RUN runs in a container made by the
//! container service and its changes are committed; COPY/ADD write into a
//! fresh snapshot that is committed the same way; the other instructions
//! change only the config. Every step's image records the step's config
//! (`container_config`) over its parent, which is the cache dockerd's
//! classic builder keeps: same parent + same step config = `Using cache`.

pub mod context;
mod copy;
mod remote;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use api_types::container::{ContainerConfig, ContainerCreateRequest, HostConfig};
use api_types::image::JsonMessage;
use api_types::reference::Reference;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::backends::registry::{Platform, PlatformMatcher};

use super::containers::{AttachOptions, ContainerService, CreateOptions, Output, Stream as OutStream, WaitCondition};
use super::dockerfile::{self, Instruction, Vars};
use super::images::{parse_reference, short_id, ImageService, NewImage, PullOptions, ResolvedImage};
use super::ServiceError;
use context::Context;

/// Build arguments dockerd accepts without an `ARG` for them.
const PREDEFINED_ARGS: &[&str] =
    &["HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"];

#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    pub dockerfile: String,
    pub tags: Vec<String>,
    pub quiet: bool,
    pub no_cache: bool,
    /// `cachefrom`: images whose history may answer the cache (moby's
    /// ImageCache); empty uses the local cache alone.
    pub cache_from: Vec<String>,
    pub remove: bool,
    pub force_remove: bool,
    pub pull: bool,
    pub build_args: BTreeMap<String, Option<String>>,
    pub labels: BTreeMap<String, String>,
    pub target: String,
    pub network_mode: String,
    pub remote: String,
    /// `buildid`: the name `/build/cancel` stops this build by.
    pub build_id: String,
    /// `platform`: what `FROM` images are for (the host's when `None`).
    pub platform: Option<Platform>,
    /// Resource limits and host settings for RUN containers (`memory`,
    /// `cpu*`, `shmsize`, `extrahosts`).
    pub run_host_config: HostConfig,
}

pub struct BuildService {
    images: Arc<ImageService>,
    containers: Arc<ContainerService>,
    /// Contexts are unpacked under here.
    dir: PathBuf,
    /// Builds started with a `buildid`, for `/build/cancel`.
    running: std::sync::Mutex<BTreeMap<String, CancellationToken>>,
}

/// A failure that carries a step's exit code (`errorDetail.code`).
pub struct BuildError {
    pub message: String,
    pub code: Option<i64>,
    /// The service error behind it, for an answer before any output.
    pub service: Option<ServiceError>,
}

impl From<ServiceError> for BuildError {
    fn from(e: ServiceError) -> Self {
        Self { message: e.to_string(), code: None, service: Some(e) }
    }
}

/// The JSON messages of one build; in quiet mode they are held back and
/// only shown if the build fails.
struct Out {
    tx: mpsc::Sender<JsonMessage>,
    quiet: bool,
    held: Vec<JsonMessage>,
    /// Set by `/build/cancel`.
    cancel: CancellationToken,
}

impl Out {
    async fn send(&mut self, m: JsonMessage) -> Result<(), BuildError> {
        if self.cancel.is_cancelled() {
            return Err(invalid("build cancelled"));
        }
        if self.quiet && m.aux.is_none() {
            self.held.push(m);
            return Ok(());
        }
        self.tx.send(m).await.map_err(|_| invalid("build cancelled: the client went away"))
    }

    async fn say(&mut self, text: impl Into<String>) -> Result<(), BuildError> {
        self.send(JsonMessage { stream: Some(text.into()), ..Default::default() }).await
    }

    /// In quiet mode, show what was held back (before an error).
    async fn flush_held(&mut self) {
        for m in std::mem::take(&mut self.held) {
            let _ = self.tx.send(m).await;
        }
    }
}

/// One stage's state while it builds.
struct Stage {
    name: String,
    image: Option<Arc<ResolvedImage>>,
    config: ContainerConfig,
    /// ARGs declared in this stage, with their values.
    args: BTreeMap<String, Option<String>>,
    cmd_set: bool,
    author: String,
    /// The `cachefrom` images, looked up again at each FROM as dockerd
    /// does; `None` without `cachefrom`.
    cache_sources: Option<Vec<Arc<ResolvedImage>>>,
    /// A step missed the cache: the ones after it run (dockerd's prober).
    cache_busted: bool,
}

impl Stage {
    /// Variables for word processing: build args, then the config's env over them.
    fn vars(&self) -> Vars {
        let mut vars: Vars = self.args.iter().filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v))).collect();
        vars.extend(dockerfile::env_vars(self.config.env.as_deref().unwrap_or_default()));
        vars
    }

    fn parent_id(&self) -> Option<&str> {
        self.image.as_deref().map(ResolvedImage::id)
    }
}

fn image_config(image: &ResolvedImage) -> Result<ContainerConfig, ServiceError> {
    match &image.config.config {
        Some(map) => serde_json::from_value(serde_json::Value::Object(map.clone()))
            .map_err(|e| ServiceError::Internal(format!("image {}: bad config: {e}", image.id()))),
        None => Ok(ContainerConfig::default()),
    }
}

fn invalid(message: impl Into<String>) -> BuildError {
    ServiceError::InvalidParameter(message.into()).into()
}

impl BuildService {
    pub fn new(images: Arc<ImageService>, containers: Arc<ContainerService>, data_root: &std::path::Path) -> Self {
        let dir = data_root.join("builder");
        clean_leftovers(&dir);
        Self { images, containers, dir, running: Default::default() }
    }

    /// Checks made before any output (their errors are HTTP errors).
    pub fn validate(&self, opts: &BuildOptions) -> Result<Vec<Reference>, ServiceError> {
        opts.tags.iter().map(|t| parse_reference(t).map(|r| r.with_default_tag())).collect()
    }

    /// Run a build; messages go to `tx`. Errors before the first message
    /// are the caller's to answer; later ones are sent by the caller too.
    pub async fn build<S, E>(&self, body: S, opts: BuildOptions, tx: mpsc::Sender<JsonMessage>) -> Result<(), BuildError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: std::fmt::Display,
    {
        let tags = self.validate(&opts)?;
        tokio::fs::create_dir_all(&self.dir).await.map_err(|e| invalid(format!("creating {}: {e}", self.dir.display())))?;
        let upload = self.dir.join(format!("upload-{}.tar", uuid::Uuid::new_v4().simple()));
        let received = receive(body, &upload).await;
        let ctx = match received {
            Ok(()) if !opts.remote.is_empty() => remote::fetch(&opts.remote, &self.dir, &upload, &opts.dockerfile).await,
            Ok(()) => {
                let (upload2, dir) = (upload.clone(), self.dir.clone());
                tokio::task::spawn_blocking(move || Context::unpack(&upload2, &dir))
                    .await
                    .map_err(|e| invalid(format!("unpacking the context: {e}")))?
            }
            Err(e) => Err(e),
        };
        let _ = tokio::fs::remove_file(&upload).await;
        let ctx = Arc::new(ctx?);
        let cancel = CancellationToken::new();
        if !opts.build_id.is_empty() {
            self.lock_running().insert(opts.build_id.clone(), cancel.clone());
        }
        let mut out = Out { tx, quiet: opts.quiet, held: Vec::new(), cancel };
        let result = self.run(&ctx, &opts, &tags, &mut out).await;
        if !opts.build_id.is_empty() {
            self.lock_running().remove(&opts.build_id);
        }
        if result.is_err() {
            out.flush_held().await;
        }
        let ctx_owned = ctx;
        tokio::task::spawn_blocking(move || drop(ctx_owned));
        result
    }

    fn lock_running(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, CancellationToken>> {
        self.running.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `/build/cancel`: the build stops at its next message or step, its
    /// running step's container killed and removed.
    pub fn cancel(&self, build_id: &str) {
        if let Some(token) = self.lock_running().get(build_id) {
            token.cancel();
        }
    }

    async fn run(&self, ctx: &Arc<Context>, opts: &BuildOptions, tags: &[Reference], out: &mut Out) -> Result<(), BuildError> {
        let name = if opts.dockerfile.is_empty() { "Dockerfile" } else { &opts.dockerfile };
        let mut path = ctx.path(name);
        if !path.is_file() && opts.dockerfile.is_empty() {
            path = ctx.path("dockerfile");
        }
        let text = tokio::fs::read_to_string(&path)
            .await
            .map_err(|_| invalid(format!("Cannot locate specified Dockerfile: {name}")))?;
        let parsed = dockerfile::parse(&text)?;
        let escape = parsed.escape;
        if parsed.instructions.is_empty() {
            return Err(invalid("the Dockerfile (Dockerfile) cannot be empty"));
        }
        // ARGs before the first FROM, then stages.
        let mut meta: Vec<Instruction> = Vec::new();
        let mut stages: Vec<Vec<Instruction>> = Vec::new();
        for ins in parsed.instructions {
            if ins.keyword == "from" {
                stages.push(vec![ins]);
            } else if let Some(stage) = stages.last_mut() {
                stage.push(ins);
            } else if ins.keyword == "arg" {
                meta.push(ins);
            } else {
                return Err(invalid("no build stage in current context"));
            }
        }
        if stages.is_empty() {
            return Err(invalid("no build stage in current context"));
        }
        let mut used_args: std::collections::BTreeSet<String> = Default::default();
        let mut meta_args: BTreeMap<String, Option<String>> = BTreeMap::new();
        for ins in &meta {
            for (k, v) in arg_decls(ins, &Vars::new(), escape)? {
                let value = match opts.build_args.get(&k) {
                    Some(given) => {
                        used_args.insert(k.clone());
                        given.clone()
                    }
                    None => v,
                };
                meta_args.insert(k, value);
            }
        }
        let meta_vars: Vars = meta_args.iter().filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v))).collect();
        let stage_name = |ins: &Instruction| -> Option<String> {
            let words = dockerfile::process(&ins.rest, &meta_vars, escape, true).ok()?;
            (words.len() == 3 && words[1].eq_ignore_ascii_case("as")).then(|| words[2].to_ascii_lowercase())
        };
        let last = if opts.target.is_empty() {
            stages.len() - 1
        } else {
            stages
                .iter()
                .position(|s| stage_name(&s[0]).as_deref() == Some(opts.target.to_ascii_lowercase().as_str()))
                .ok_or_else(|| invalid(format!("failed to reach build target {} in Dockerfile", opts.target)))?
        };
        stages.truncate(last + 1);
        // `labels`: one LABEL step each, sorted, shown unquoted and taken
        // literally (dockerd's buildLabelOptions).
        for (k, v) in &opts.labels {
            let mut extra = dockerfile::parse(&format!("LABEL {}={}", literal(k), literal(v)))?.instructions;
            for ins in &mut extra {
                ins.original = format!("LABEL {k}={v}");
            }
            stages[last].append(&mut extra);
        }
        let total: usize = stages.iter().map(Vec::len).sum();
        let mut step = 0;
        let mut done: Vec<Stage> = Vec::new();
        for instructions in &stages {
            let mut stage = self.from(&instructions[0], &done, &meta_vars, &meta_args, escape, opts, &mut step, total, out).await?;
            stage.name = stage_name(&instructions[0]).unwrap_or_default();
            // The base image's ONBUILD triggers run right after FROM.
            let triggers = stage.config.on_build.take().unwrap_or_default();
            if !triggers.is_empty() {
                let n = triggers.len();
                out.say(format!("# Executing {n} build trigger{}\n", if n == 1 { "" } else { "s" })).await?;
                for t in dockerfile::parse(&triggers.join("\n"))?.instructions {
                    self.dispatch(&t, &mut stage, &done, ctx, opts, &mut used_args, escape, out).await?;
                }
            }
            for ins in &instructions[1..] {
                step += 1;
                out.say(format!("Step {step}/{total} : {}", ins.original)).await?;
                out.say("\n").await?;
                self.dispatch(ins, &mut stage, &done, ctx, opts, &mut used_args, escape, out).await?;
            }
            done.push(stage);
        }
        let mut final_stage = done.pop().ok_or_else(|| invalid("no build stage in current context"))?;
        let image = match final_stage.image {
            Some(image) => image,
            // `FROM scratch` alone: an image with no layers.
            None => self.commit_config(&mut final_stage, "FROM scratch".into(), &opts.no_cache).await?.0,
        };
        out.send(JsonMessage { aux: Some(serde_json::json!({ "ID": image.id() })), ..Default::default() }).await?;
        let unused: Vec<&String> = opts
            .build_args
            .keys()
            .filter(|k| !used_args.contains(*k) && !PREDEFINED_ARGS.contains(&k.as_str()))
            .collect();
        if !unused.is_empty() {
            let list = unused.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ");
            out.say(format!("[Warning] One or more build-args [{list}] were not consumed\n")).await?;
        }
        out.say(format!("Successfully built {}\n", short_id(image.id()))).await?;
        if !tags.is_empty() {
            self.images.name_image(&image.target, tags).await?;
            for t in tags {
                self.images.emit("tag", image.id(), &t.familiar_string());
                out.say(format!("Successfully tagged {}\n", t.familiar_string())).await?;
            }
        }
        if out.quiet {
            let _ = out.tx.send(JsonMessage { stream: Some(format!("{}\n", image.id())), ..Default::default() }).await;
        }
        Ok(())
    }

    /// `FROM`: the base image (a stage, `scratch`, a local or pulled image)
    /// and its ONBUILD triggers.
    #[allow(clippy::too_many_arguments)]
    async fn from(
        &self,
        ins: &Instruction,
        done: &[Stage],
        meta_vars: &Vars,
        meta_args: &BTreeMap<String, Option<String>>,
        escape: char,
        opts: &BuildOptions,
        step: &mut usize,
        total: usize,
        out: &mut Out,
    ) -> Result<Stage, BuildError> {
        *step += 1;
        out.say(format!("Step {step}/{total} : {}", ins.original)).await?;
        out.say("\n").await?;
        let words = dockerfile::process(&ins.rest, meta_vars, escape, true)?;
        let platform = match ins.flag("platform") {
            Some(p) => {
                let p = dockerfile::process_word(p, meta_vars, escape)?;
                Some(Platform::parse(&p).map_err(|e| invalid(format!("failed to parse platform {p}: {e}")))?)
            }
            None => opts.platform.clone(),
        };
        let base = match words.as_slice() {
            [b] => b.clone(),
            [b, as_, _] if as_.eq_ignore_ascii_case("as") => b.clone(),
            _ => return Err(invalid("FROM requires either one or three arguments")),
        };
        let image = if base.eq_ignore_ascii_case("scratch") {
            None
        } else if let Some(s) = done.iter().find(|s| !s.name.is_empty() && s.name == base.to_ascii_lowercase()) {
            s.image.clone()
        } else {
            Some(self.base_image(&base, opts.pull, platform.as_ref(), out).await?)
        };
        if let Some(image) = &image {
            out.say(format!(" ---> {}\n", short_id(image.id()))).await?;
        }
        let config = match &image {
            Some(i) => image_config(i)?,
            None => ContainerConfig::default(),
        };
        // Meta ARGs are visible in a stage only when redeclared.
        let _ = meta_args;
        let cache_sources = if opts.cache_from.is_empty() { None } else { Some(self.images.cache_sources(&opts.cache_from).await) };
        let stage = Stage {
            name: String::new(),
            image,
            config,
            args: BTreeMap::new(),
            cmd_set: false,
            author: String::new(),
            cache_sources,
            cache_busted: false,
        };
        Ok(stage)
    }

    /// A base image by name: local, or pulled (always with `pull`).
    /// A local image is used only if it is for `platform` (when given).
    async fn base_image(&self, name: &str, pull: bool, platform: Option<&Platform>, out: &mut Out) -> Result<Arc<ResolvedImage>, BuildError> {
        if !pull {
            match self.images.find(name).await {
                Ok(found) => {
                    let image = found.image.resolved;
                    let c = &image.config;
                    let fits = platform.is_none_or(|p| {
                        PlatformMatcher::only(p).rank(&Platform::new(&c.os, &c.architecture, c.variant.as_deref().unwrap_or(""))).is_some()
                    });
                    if fits {
                        return Ok(image);
                    }
                }
                // Only an image that is not there is pulled: containerd
                // being unreachable is not a reason to go to a registry.
                Err(ServiceError::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let reference = parse_reference(name)?.with_default_tag();
        let (tx, mut rx) = mpsc::channel::<JsonMessage>(64);
        let progress = super::images::Progress::new(tx);
        let images = self.images.clone();
        let opts = PullOptions { reference: reference.clone(), platform: platform.cloned(), credentials: Default::default() };
        let pulling = tokio::spawn(async move { images.pull(opts, &progress).await });
        while let Some(m) = rx.recv().await {
            out.send(m).await?;
        }
        pulling.await.map_err(|e| invalid(format!("pull failed: {e}")))??;
        Ok(self.images.find(&reference.to_string()).await?.image.resolved)
    }

    #[allow(clippy::too_many_arguments)]
    async fn dispatch(
        &self,
        ins: &Instruction,
        stage: &mut Stage,
        done: &[Stage],
        ctx: &Arc<Context>,
        opts: &BuildOptions,
        used_args: &mut std::collections::BTreeSet<String>,
        escape: char,
        out: &mut Out,
    ) -> Result<(), BuildError> {
        let vars = stage.vars();
        match ins.keyword.as_str() {
            "run" => return self.run_step(ins, stage, opts, out).await,
            "copy" | "add" => return self.copy_step(ins, stage, done, ctx, opts, escape, out).await,
            "arg" => {
                for (k, default) in arg_decls(ins, &vars, escape)? {
                    let value = match opts.build_args.get(&k) {
                        Some(given) => {
                            used_args.insert(k.clone());
                            given.clone()
                        }
                        None => default,
                    };
                    stage.args.insert(k, value);
                }
            }
            "maintainer" => stage.author = dockerfile::process_word(&ins.rest, &vars, escape)?,
            _ => {
                dockerfile::apply_metadata(ins, &mut stage.config, &vars, escape)?;
                match ins.keyword.as_str() {
                    "cmd" => stage.cmd_set = true,
                    "entrypoint" if !stage.cmd_set => stage.config.cmd = None,
                    _ => {}
                }
            }
        }
        let (image, cached) = self.commit_config(stage, ins.original.clone(), &opts.no_cache).await?;
        if cached {
            out.say(" ---> Using cache\n").await?;
        }
        self.finish_step(stage, image, out).await
    }

    async fn finish_step(&self, stage: &mut Stage, image: Arc<ResolvedImage>, out: &mut Out) -> Result<(), BuildError> {
        out.say(format!(" ---> {}\n", short_id(image.id()))).await?;
        stage.image = Some(image);
        Ok(())
    }

    /// The cache's hit for `key_config` over the stage's image, if any.
    async fn probe(&self, stage: &mut Stage, key_config: &ContainerConfig, no_cache: bool) -> Result<Option<Arc<ResolvedImage>>, BuildError> {
        if no_cache || stage.cache_busted {
            return Ok(None);
        }
        let hit = match &mut stage.cache_sources {
            Some(sources) => self.images.cached_from_sources(stage.image.as_deref(), key_config, sources).await?,
            None => match self.images.find_child(stage.parent_id(), key_config).await? {
                Some(id) => Some(self.images.find(&id).await?.image.resolved),
                None => None,
            },
        };
        stage.cache_busted = hit.is_none();
        Ok(hit)
    }

    /// A config-only step's image (from cache, or new), and whether it
    /// came from the cache.
    async fn commit_config(&self, stage: &mut Stage, text: String, no_cache: &bool) -> Result<(Arc<ResolvedImage>, bool), BuildError> {
        let mut key = stage.config.clone();
        key.cmd = Some(vec!["/bin/sh".into(), "-c".into(), "#(nop) ".into(), text.clone()]);
        if let Some(hit) = self.probe(stage, &key, *no_cache).await? {
            return Ok((hit, true));
        }
        let stored = self
            .images
            .create_image(NewImage {
                parent: stage.image.as_deref(),
                snapshot: None,
                config: &stage.config,
                container_config: Some(&key),
                container: "",
                created_by: format!("/bin/sh -c #(nop)  {text}"),
                author: stage.author.clone(),
                comment: String::new(),
                names: &[],
            })
            .await?;
        Ok((self.images.resolve_target(&stored.target).await?, false))
    }

    /// RUN: a container on the stage's image, its output streamed, its
    /// changes committed.
    async fn run_step(&self, ins: &Instruction, stage: &mut Stage, opts: &BuildOptions, out: &mut Out) -> Result<(), BuildError> {
        let shell: Vec<String> =
            stage.config.shell.clone().unwrap_or_else(|| dockerfile::DEFAULT_SHELL.iter().map(|s| s.to_string()).collect());
        let cmd = dockerfile::command(ins, &shell);
        // Build args reach RUN as environment (the config's env wins), and
        // are part of the cache key as dockerd writes it: `|N K=V ... cmd`.
        let env = stage.config.env.clone().unwrap_or_default();
        let env_keys: std::collections::BTreeSet<String> =
            env.iter().map(|e| e.split('=').next().unwrap_or_default().to_string()).collect();
        let args: Vec<String> = stage
            .args
            .iter()
            .filter(|(k, v)| v.is_some() && !env_keys.contains(*k))
            .map(|(k, v)| format!("{k}={}", v.clone().unwrap_or_default()))
            .collect();
        let mut key = stage.config.clone();
        let mut key_cmd = Vec::new();
        if !args.is_empty() {
            key_cmd.push(format!("|{}", args.len()));
            key_cmd.extend(args.iter().cloned());
        }
        key_cmd.extend(cmd.iter().cloned());
        key.cmd = Some(key_cmd.clone());
        if let Some(hit) = self.probe(stage, &key, opts.no_cache).await? {
            out.say(" ---> Using cache\n").await?;
            return self.finish_step(stage, hit, out).await;
        }
        if stage.image.is_none() {
            // RUN straight after `FROM scratch`: give the container an image.
            let (base, _) = self.commit_config(stage, "FROM scratch".into(), &opts.no_cache).await?;
            stage.image = Some(base);
        }
        let parent = stage.image.clone().ok_or_else(|| invalid("no image to run on"))?;
        let mut run_config = stage.config.clone();
        run_config.image = parent.id().to_string();
        run_config.cmd = Some(cmd.clone());
        run_config.entrypoint = Some(vec![String::new()]);
        run_config.env = Some(env.into_iter().chain(args).collect());
        run_config.healthcheck = None;
        run_config.attach_stdout = true;
        run_config.attach_stderr = true;
        let host_config = HostConfig {
            network_mode: if opts.network_mode.is_empty() { "default".into() } else { opts.network_mode.clone() },
            ..opts.run_host_config.clone()
        };
        let created = self
            .containers
            .create(CreateOptions {
                name: None,
                body: ContainerCreateRequest { config: run_config, host_config, networking_config: None },
            })
            .await?;
        let id = created.id;
        let result = match out.say(format!(" ---> Running in {}\n", &id[..12])).await {
            Ok(()) => self.run_container(&id, out).await,
            Err(e) => Err(e),
        };
        let code = match result {
            Ok(code) => code,
            Err(e) => {
                self.remove_container(&id).await;
                return Err(e);
            }
        };
        if code != 0 {
            if opts.force_remove {
                self.remove_container(&id).await;
            }
            let shown = cmd.join(" ");
            return Err(BuildError {
                message: format!("The command '{shown}' returned a non-zero code: {code}"),
                code: Some(code),
                service: None,
            });
        }
        let stored = self
            .images
            .create_image(NewImage {
                parent: Some(&parent),
                snapshot: Some(&id),
                config: &stage.config,
                container_config: Some(&key),
                container: &id,
                created_by: key_cmd.join(" "),
                author: stage.author.clone(),
                comment: String::new(),
                names: &[],
            })
            .await;
        if opts.remove || opts.force_remove {
            self.remove_container(&id).await;
            out.say(format!("Removing intermediate container {}\n", &id[..12])).await?;
        }
        let image = self.images.resolve_target(&stored?.target).await?;
        self.finish_step(stage, image, out).await
    }

    /// Start the container, stream its output, answer its exit code.
    async fn run_container(&self, id: &str, out: &mut Out) -> Result<i64, BuildError> {
        let mut streams = self.containers.attach(id, AttachOptions { stdin: false, stdout: true, stderr: true }, "").await?;
        let waiting = self.containers.wait(id, WaitCondition::NextExit)?;
        self.containers.start(id).await?;
        loop {
            let next = tokio::select! {
                next = streams.output.recv() => next,
                // The client hung up: stop the step; the caller removes the container.
                _ = out.tx.closed() => return self.stop_step(id, waiting, invalid("build cancelled: the client went away")).await,
                _ = out.cancel.cancelled() => return self.stop_step(id, waiting, invalid("build cancelled")).await,
            };
            match next {
                Ok(Output::Data(stream, bytes)) => {
                    let text = String::from_utf8_lossy(&bytes).to_string();
                    let text = match stream {
                        OutStream::Stdout => text,
                        OutStream::Stderr => format!("\u{1b}[91m{text}\u{1b}[0m"),
                    };
                    if let Err(e) = out.say(text).await {
                        return self.stop_step(id, waiting, e).await;
                    }
                }
                Ok(Output::End) => break,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            }
        }
        Ok(waiting.await.status_code)
    }

    /// Stop a step: kill it and wait for its exit, so that the caller's
    /// remove does not race the dying task. Answers `error`.
    async fn stop_step<T>(&self, id: &str, exited: impl std::future::Future<Output = T>, error: BuildError) -> Result<i64, BuildError> {
        let _ = self.containers.kill(id, None).await;
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), exited).await;
        Err(error)
    }

    async fn remove_container(&self, id: &str) {
        if let Err(e) = self.containers.remove(id, true, true).await {
            tracing::warn!(container.id = %id, error = %e, "removing a build container");
        }
    }

    /// COPY and ADD.
    #[allow(clippy::too_many_arguments)]
    async fn copy_step(
        &self,
        ins: &Instruction,
        stage: &mut Stage,
        done: &[Stage],
        ctx: &Arc<Context>,
        opts: &BuildOptions,
        escape: char,
        out: &mut Out,
    ) -> Result<(), BuildError> {
        let kw = ins.keyword.to_ascii_uppercase();
        let vars = stage.vars();
        let mut words = match ins.json() {
            Some(w) => w.into_iter().map(|w| dockerfile::process_word(&w, &vars, escape)).collect::<Result<Vec<_>, _>>()?,
            None => dockerfile::process(&ins.rest, &vars, escape, true)?,
        };
        if words.len() < 2 {
            return Err(invalid(format!("{kw} requires at least two arguments")));
        }
        let dest_word = words.pop().unwrap_or_default();
        let workdir = if stage.config.working_dir.is_empty() { "/".to_string() } else { stage.config.working_dir.clone() };
        let dest_dir_syntax = dest_word.ends_with('/') || dest_word == "." || dest_word.ends_with("/.");
        let dest = if dest_word.starts_with('/') { dockerfile::clean_path(&dest_word) } else { dockerfile::clean_path(&format!("{workdir}/{dest_word}")) };
        if words.iter().any(|w| w.starts_with("http://") || w.starts_with("https://")) {
            return Err(invalid(format!("{kw} failed: source URLs are not supported by berthd's builder (it builds offline)")));
        }
        if words.len() > 1 && !dest_dir_syntax {
            return Err(invalid(format!(
                "When using {kw} with more than one source file, the destination must be a directory and end with a /"
            )));
        }
        let from = ins.flag("from").map(str::to_string);
        if from.is_some() && kw == "ADD" {
            return Err(invalid("ADD does not support the --from flag"));
        }
        if !ins.heredocs.is_empty() {
            if from.is_some() {
                return Err(invalid(format!("{kw} --from cannot copy here-documents")));
            }
            let dir = self.dir.join(format!("heredoc-{}", uuid::Uuid::new_v4().simple()));
            let written = write_heredocs(&dir, ins, &mut words, &vars, escape).await;
            let result = match written {
                Ok(()) => self.copy_from(ins, stage, &kw, words, dest, dest_dir_syntax, dir.clone(), None, opts, out).await,
                Err(e) => Err(e),
            };
            let _ = tokio::fs::remove_dir_all(&dir).await;
            return result;
        }
        // Where the sources are: the context, or another stage/image mounted read-only.
        let mut view: Option<(super::images::WorkSnapshot, PathBuf)> = None;
        let (src_root, ignore) = match &from {
            None => (ctx.root.clone(), Some(ctx.ignore.clone())),
            Some(f) => {
                let image = match f.parse::<usize>() {
                    Ok(i) if i < done.len() => done[i].image.clone(),
                    Ok(_) => return Err(invalid(format!("invalid from flag value {f}: index out of bounds"))),
                    Err(_) => match done.iter().find(|s| !s.name.is_empty() && s.name == f.to_ascii_lowercase()) {
                        Some(s) => s.image.clone(),
                        None => Some(self.base_image(f, false, opts.platform.as_ref(), out).await?),
                    },
                };
                match image {
                    None => (PathBuf::new(), None),
                    Some(image) => {
                        let snap = self.images.view_snapshot(&image).await?;
                        let target = self.dir.join(format!("from-{}", uuid::Uuid::new_v4().simple()));
                        let mounts = snap.mounts.clone();
                        let t2 = target.clone();
                        let mounted = tokio::task::spawn_blocking(move || {
                            std::fs::create_dir_all(&t2)?;
                            crate::backends::mount::mount_snapshot(&mounts, &t2, false)
                        })
                        .await
                        .map_err(|e| invalid(e.to_string()))?;
                        if let Err(e) = mounted {
                            self.images.drop_snapshot(&snap).await;
                            return Err(invalid(format!("mounting the --from={f} image: {e}")));
                        }
                        view = Some((snap, target.clone()));
                        (target, None)
                    }
                }
            }
        };
        let result = self.copy_from(ins, stage, &kw, words, dest, dest_dir_syntax, src_root, ignore, opts, out).await;
        if let Some((snap, target)) = view {
            let _ = tokio::task::spawn_blocking(move || {
                let _ = crate::backends::mount::unmount(&target);
                let _ = std::fs::remove_dir(&target);
            })
            .await;
            self.images.drop_snapshot(&snap).await;
        }
        result
    }

    #[allow(clippy::too_many_arguments)]
    async fn copy_from(
        &self,
        ins: &Instruction,
        stage: &mut Stage,
        kw: &str,
        words: Vec<String>,
        dest: String,
        dest_dir_syntax: bool,
        src_root: PathBuf,
        ignore: Option<context::Ignore>,
        opts: &BuildOptions,
        out: &mut Out,
    ) -> Result<(), BuildError> {
        let kw_owned = kw.to_string();
        let (root2, ignore2) = (src_root.clone(), ignore.clone());
        let (sources, sum) = tokio::task::spawn_blocking(move || -> Result<_, ServiceError> {
            if root2.as_os_str().is_empty() {
                return Err(ServiceError::InvalidParameter(format!("{kw_owned} failed: the source stage has no files")));
            }
            let src = copy::SourceRoot { root: &root2, ignore: ignore2.as_ref() };
            let mut sources = Vec::new();
            for w in &words {
                sources.extend(copy::expand_source(&src, w, &kw_owned)?);
            }
            let sum = copy::checksum(&sources, ignore2.as_ref())?;
            Ok((sources, sum))
        })
        .await
        .map_err(|e| invalid(e.to_string()))??;
        let chown = ins.flag("chown").map(str::to_string);
        let chmod = match ins.flag("chmod") {
            Some(m) => Some(u32::from_str_radix(m, 8).map_err(|_| invalid(format!("invalid chmod parameter: {m}")))?),
            None => None,
        };
        let shown_dest = if dest_dir_syntax && dest != "/" { format!("{dest}/") } else { dest.clone() };
        let mut text = format!("{kw} {sum} in {shown_dest} ");
        if let Some(c) = &chown {
            text.push_str(&format!("--chown={c} "));
        }
        if let Some(m) = chmod {
            text.push_str(&format!("--chmod={m:o} "));
        }
        let mut key = stage.config.clone();
        key.cmd = Some(vec!["/bin/sh".into(), "-c".into(), format!("#(nop) {text}")]);
        if let Some(hit) = self.probe(stage, &key, opts.no_cache).await? {
            out.say(" ---> Using cache\n").await?;
            return self.finish_step(stage, hit, out).await;
        }
        let snap = self.images.work_snapshot(stage.image.as_deref()).await?;
        let (upper, lowers) = layer_dirs(&snap.mounts);
        let extract = kw == "ADD";
        let ignore3 = ignore.clone();
        let applied = tokio::task::spawn_blocking(move || -> Result<(), ServiceError> {
            let upper = upper.ok_or_else(|| ServiceError::Internal("the build snapshot has no writable layer".into()))?;
            let owner = match &chown {
                Some(spec) => resolve_owner(spec, &lowers)?,
                None => (0, 0),
            };
            let single_file = sources.len() == 1 && !sources[0].is_dir;
            let dest_is_dir = dest_dir_syntax
                || !single_file
                || std::fs::metadata(lowers.iter().map(|l| l.join(dest.trim_start_matches('/'))).find(|p| p.exists()).unwrap_or_default())
                    .map(|m| m.is_dir())
                    .unwrap_or(false);
            let plan = copy::CopyPlan { sources, dest, dest_is_dir, owner, chmod, extract };
            copy::apply(&plan, &upper, &lowers, ignore3.as_ref())
        })
        .await
        .map_err(|e| invalid(e.to_string()))
        .and_then(|r| r.map_err(BuildError::from));
        let stored = match applied {
            Ok(()) => self
                .images
                .create_image(NewImage {
                    parent: stage.image.as_deref(),
                    snapshot: Some(&snap.key),
                    config: &stage.config,
                    container_config: Some(&key),
                    container: "",
                    created_by: format!("/bin/sh -c #(nop) {text}"),
                    author: stage.author.clone(),
                    comment: String::new(),
                    names: &[],
                })
                .await
                .map_err(BuildError::from),
            Err(e) => Err(e),
        };
        self.images.drop_snapshot(&snap).await;
        let image = self.images.resolve_target(&stored?.target).await?;
        self.finish_step(stage, image, out).await
    }

    /// `POST /build/prune`: the builder's cache is its untagged step
    /// images; remove those no container uses. Answers the IDs and bytes.
    pub async fn prune(&self) -> Result<(Vec<String>, u64), ServiceError> {
        let in_use = self.containers.image_ids_in_use().await;
        self.images.prune_build_cache(&in_use).await
    }
}

/// Remove what a build interrupted by a crash left in `dir`: contexts,
/// uploads, and `--from` mounts (unmounted first). Their snapshots go with
/// their leases, which start-up drops.
fn clean_leftovers(dir: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().to_string();
        if name.starts_with("from-") {
            let _ = crate::backends::mount::unmount(&path);
            let _ = std::fs::remove_dir(&path);
        } else if name.starts_with("context-") || name.starts_with("heredoc-") {
            let _ = std::fs::remove_dir_all(&path);
        } else if name.starts_with("upload-") {
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// Write a COPY's here-documents as files named after them in `dir`, and
/// point its source words at them. Variables in a document whose marker is
/// unquoted are expanded.
async fn write_heredocs(dir: &std::path::Path, ins: &Instruction, words: &mut [String], vars: &Vars, escape: char) -> Result<(), BuildError> {
    tokio::fs::create_dir_all(dir).await.map_err(|e| invalid(format!("creating {}: {e}", dir.display())))?;
    for word in words.iter_mut() {
        let name = word.trim_start_matches("<<").trim_start_matches('-').trim_matches(|c| c == '"' || c == '\'');
        let Some(doc) = word.starts_with("<<").then(|| ins.heredocs.iter().find(|d| d.name == name)).flatten() else {
            return Err(invalid(format!("{} cannot mix here-documents and context files ({word})", ins.keyword.to_ascii_uppercase())));
        };
        let content = if doc.expand { dockerfile::expand_vars(&doc.content, vars, escape)? } else { doc.content.clone() };
        let path = dir.join(&doc.name);
        tokio::fs::write(&path, content).await.map_err(|e| invalid(format!("writing {}: {e}", path.display())))?;
        use std::os::unix::fs::PermissionsExt;
        let _ = tokio::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).await;
        *word = doc.name.clone();
    }
    Ok(())
}

/// Receive the request body into `path`.
async fn receive<S, E>(body: S, path: &std::path::Path) -> Result<(), ServiceError>
where
    S: Stream<Item = Result<Bytes, E>>,
    E: std::fmt::Display,
{
    let mut file = tokio::fs::File::create(path).await.map_err(|e| ServiceError::Internal(format!("storing the context: {e}")))?;
    let mut body = std::pin::pin!(body);
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| ServiceError::InvalidParameter(format!("reading the build context: {e}")))?;
        file.write_all(&chunk).await.map_err(|e| ServiceError::Internal(format!("storing the context: {e}")))?;
    }
    file.flush().await.map_err(|e| ServiceError::Internal(format!("storing the context: {e}")))
}

/// `ARG name[=default] ...`.
fn arg_decls(ins: &Instruction, vars: &Vars, escape: char) -> Result<Vec<(String, Option<String>)>, ServiceError> {
    let words = dockerfile::raw_words(&ins.rest, escape);
    if words.is_empty() {
        return Err(ServiceError::InvalidParameter("ARG requires exactly one argument".into()));
    }
    words
        .iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) => Ok((k.to_string(), Some(dockerfile::process_word(v, vars, escape)?))),
            None => Ok((w.to_string(), None)),
        })
        .collect()
}

/// `s` as one Dockerfile word that expands to itself: single quotes
/// keep `$` and the escape character literal.
fn literal(s: &str) -> String {
    if s.chars().all(|c| c.is_ascii_alphanumeric() || "._-/:".contains(c)) && !s.is_empty() {
        s.to_string()
    } else if !s.contains('\'') {
        format!("'{s}'")
    } else {
        format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"").replace('$', "\\$"))
    }
}

/// The writable and the read-only layer directories of a snapshot's mounts.
fn layer_dirs(mounts: &[crate::backends::containerd::Mount]) -> (Option<PathBuf>, Vec<PathBuf>) {
    let mut upper = None;
    let mut lowers = Vec::new();
    for m in mounts {
        if m.kind == "overlay" {
            for opt in &m.options {
                if let Some(u) = opt.strip_prefix("upperdir=") {
                    upper = Some(PathBuf::from(u));
                } else if let Some(l) = opt.strip_prefix("lowerdir=") {
                    lowers.extend(l.split(':').map(PathBuf::from));
                }
            }
        } else if m.options.iter().any(|o| o == "ro") {
            lowers.push(PathBuf::from(&m.source));
        } else {
            upper = Some(PathBuf::from(&m.source));
        }
    }
    (upper, lowers)
}

/// `--chown=user[:group]` against the image's passwd and group files.
fn resolve_owner(spec: &str, lowers: &[PathBuf]) -> Result<(u32, u32), ServiceError> {
    let read = |p: &str| lowers.iter().find_map(|l| std::fs::read_to_string(l.join(p)).ok()).unwrap_or_default();
    let lookup = |db: &str, name: &str| -> Option<(u32, u32)> {
        db.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.first() == Some(&name)).then(|| Some((f.get(2)?.parse().ok()?, f.get(3).and_then(|g| g.parse().ok()).unwrap_or(0))))?
        })
    };
    let (user, group) = spec.split_once(':').map(|(u, g)| (u, Some(g))).unwrap_or((spec, None));
    let (uid, primary) = match user.parse::<u32>() {
        Ok(n) => (n, n),
        Err(_) => lookup(&read("etc/passwd"), user)
            .ok_or_else(|| ServiceError::InvalidParameter(format!("unable to convert uid/gid chown string to host mapping: can't find uid for user {user}: no such user: {user}")))?,
    };
    let gid = match group {
        None => if user.parse::<u32>().is_ok() { uid } else { primary },
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => lookup(&read("etc/group"), g).map(|(id, _)| id).ok_or_else(|| {
                ServiceError::InvalidParameter(format!("unable to convert uid/gid chown string to host mapping: can't find gid for group {g}: no such group: {g}"))
            })?,
        },
    };
    Ok((uid, gid))
}
