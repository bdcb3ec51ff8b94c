using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace TaskMerge.Engine.IO;

/// <summary>The kind of Hugging Face repository: its cache folder prefix and URL segment differ.</summary>
public enum HubRepoType
{
    /// <summary>A model repository (<c>models--org--name</c>).</summary>
    Model,
    /// <summary>A dataset repository (<c>datasets--org--name</c>, URLs under <c>/datasets/</c>).</summary>
    Dataset,
}

/// <summary>Where the hub client looks and fetches: the cache folder, the endpoint, the token, and whether it may use the network.</summary>
public sealed record HubSettings
{
    /// <summary>The hub cache (<c>HF_HUB_CACHE</c>, else <c>HF_HOME/hub</c>, else <c>~/.cache/huggingface/hub</c>).</summary>
    public required string CacheDirectory { get; init; }

    /// <summary>The hub's base URL (<c>HF_ENDPOINT</c>, else https://huggingface.co).</summary>
    public string Endpoint { get; init; } = "https://huggingface.co";

    /// <summary>Bearer token (<c>HF_TOKEN</c>, else the token file huggingface_hub writes); null for anonymous.</summary>
    public string? Token { get; init; }

    /// <summary>True: only the cache is used (<c>--offline</c>, <c>HF_HUB_OFFLINE=1</c>).</summary>
    public bool Offline { get; init; }

    /// <summary>The settings the environment variables give, as huggingface_hub reads them.</summary>
    public static HubSettings FromEnvironment(bool offline = false)
    {
        string home = Environment.GetEnvironmentVariable("HF_HOME") is { Length: > 0 } h ? h
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "huggingface");
        string cache = Environment.GetEnvironmentVariable("HF_HUB_CACHE") is { Length: > 0 } c ? c : Path.Combine(home, "hub");
        string? token = Environment.GetEnvironmentVariable("HF_TOKEN") is { Length: > 0 } t ? t : null;
        string tokenFile = Path.Combine(home, "token");
        if (token is null && File.Exists(tokenFile)) token = File.ReadAllText(tokenFile).Trim() is { Length: > 0 } ft ? ft : null;
        bool envOffline = Environment.GetEnvironmentVariable("HF_HUB_OFFLINE") is "1" or "true" or "TRUE" or "True" or "yes" or "ON" or "on";
        return new HubSettings
        {
            CacheDirectory = cache,
            Endpoint = (Environment.GetEnvironmentVariable("HF_ENDPOINT") is { Length: > 0 } e ? e : "https://huggingface.co").TrimEnd('/'),
            Token = token,
            Offline = offline || envOffline,
        };
    }
}

/// <summary>
/// Hugging Face hub references (<c>org/name</c>, <c>org/name@revision</c>) resolved to a local snapshot
/// directory in the cache layout huggingface_hub uses (<c>models--org--name/refs/REV</c> holding the commit,
/// <c>snapshots/COMMIT/FILE</c> symlinks to <c>blobs/ETAG</c>), so Python tools share the files. A reference not
/// in the cache is downloaded through the hub's HTTP API unless offline: the file list and commit from
/// <c>/api/{models|datasets}/ID/revision/REV</c>, each wanted file from <c>/ID/resolve/COMMIT/FILE</c>
/// (redirects followed, ETag names the blob, a partial <c>blobs/ETAG.incomplete</c> resumes with a Range
/// request, LFS blobs checked against their SHA-256). Every failure is a <see cref="BadInputException"/> naming the id.
/// </summary>
public sealed partial class HuggingFaceHub : IDisposable
{
    private const int MaxRedirects = 10;
    private const int Attempts = 4;
    private readonly HubSettings _settings;
    private readonly HttpClient _http;

    /// <summary>A client over <paramref name="settings"/>; <paramref name="handler"/> replaces the network stack (tests).</summary>
    public HuggingFaceHub(HubSettings settings, HttpMessageHandler? handler = null)
    {
        _settings = settings;
        _http = new HttpClient(handler ?? new SocketsHttpHandler { AllowAutoRedirect = false, ConnectTimeout = TimeSpan.FromSeconds(30) })
        {
            Timeout = Timeout.InfiniteTimeSpan,
        };
        _http.DefaultRequestHeaders.UserAgent.ParseAdd("taskmerge/1.0");
    }

    /// <summary>The files a model merge needs: weights in safetensors, JSON configs, tokenizer files and chat templates (never pickles).</summary>
    public static bool IsModelFile(string file)
    {
        string name = Path.GetFileName(file);
        return name.EndsWith(".safetensors", StringComparison.Ordinal) || name.EndsWith(".json", StringComparison.Ordinal)
            || name.EndsWith(".jinja", StringComparison.Ordinal)
            || name is "tokenizer.model" or "merges.txt" or "vocab.txt" or "spiece.model" or "sentencepiece.bpe.model";
    }

    /// <summary>True when <paramref name="reference"/> has the shape of a hub id (<c>name</c> or <c>org/name</c>, optionally <c>@revision</c>), not of a file name.</summary>
    public static bool LooksLikeRepoId(string reference) =>
        RepoIdPattern().IsMatch(reference) && !FileExtension().IsMatch(Split(reference).Id);

    /// <summary>
    /// A model named in a config as a local path: <paramref name="resolved"/> when it exists, else the hub snapshot of
    /// <paramref name="written"/> (from the cache, or downloaded); <see cref="BadInputException"/> naming it otherwise.
    /// </summary>
    public static string Locate(string written, string resolved, HubSettings settings, string role)
    {
        if (File.Exists(resolved) || Directory.Exists(resolved)) return resolved;
        if (!LooksLikeRepoId(written))
            throw new BadInputException($"{resolved}: {role} not found (a .safetensors file, a Hugging Face model directory, or a hub id org/name[@revision])");
        using var hub = new HuggingFaceHub(settings);
        return hub.Resolve(written);
    }

    /// <summary>Splits <c>org/name@revision</c>; the revision defaults to <c>main</c>.</summary>
    public static (string Id, string Revision) Split(string reference)
    {
        int at = reference.IndexOf('@');
        return at < 0 ? (reference, "main") : (reference[..at], reference[(at + 1)..]);
    }

    /// <summary>The cache folder of a repository (<c>CACHE/models--org--name</c>).</summary>
    public string RepoFolder(string id, HubRepoType type) =>
        Path.Combine(_settings.CacheDirectory, (type == HubRepoType.Model ? "models--" : "datasets--") + id.Replace("/", "--", StringComparison.Ordinal));

    /// <summary>The cached snapshot directory of <paramref name="id"/> at <paramref name="revision"/>, or null when the cache has none.</summary>
    public string? CachedSnapshot(string id, string revision, HubRepoType type = HubRepoType.Model)
    {
        string repo = RepoFolder(id, type);
        string? commit = CommitHash().IsMatch(revision) ? revision : null;
        string refFile = Path.Combine(repo, "refs", revision);
        if (commit is null && File.Exists(refFile)) commit = File.ReadAllText(refFile).Trim();
        if (commit is null) return null;
        string snap = Path.Combine(repo, "snapshots", commit);
        return Directory.Exists(snap) ? snap : null;
    }

    /// <summary>
    /// The local snapshot directory of <paramref name="reference"/> (<c>org/name[@revision]</c>): the cached one when
    /// <paramref name="complete"/> accepts it, else (online) the files <paramref name="include"/> selects downloaded into the cache.
    /// </summary>
    /// <param name="reference">Hub id, optionally with <c>@revision</c> (branch, tag or commit).</param>
    /// <param name="type">Model or dataset repository.</param>
    /// <param name="include">Which repository files to fetch (default <see cref="IsModelFile"/>).</param>
    /// <param name="complete">Whether a cached snapshot is enough without asking the hub (default: it has its weights).</param>
    /// <param name="ct">Cancels a download (the partial file stays for resuming).</param>
    public string Resolve(string reference, HubRepoType type = HubRepoType.Model, Func<string, bool>? include = null,
        Func<string, bool>? complete = null, CancellationToken ct = default)
    {
        var (id, revision) = Split(reference);
        include ??= IsModelFile;
        complete ??= type == HubRepoType.Model ? HasWeights : Directory.Exists;
        if (CachedSnapshot(id, revision, type) is { } cached && complete(cached)) return cached;
        string kind = type == HubRepoType.Model ? "model" : "dataset";
        if (_settings.Offline)
            throw new BadInputException($"{reference}: {kind} not found: no such path, and not in the Hugging Face cache ({RepoFolder(id, type)}) with downloads off (--offline / HF_HUB_OFFLINE)");
        try
        {
            return Download(id, revision, type, include, ct);
        }
        catch (HttpRequestException e)
        {
            throw new BadInputException($"{reference}: {kind} not found locally, and the Hugging Face hub at {_settings.Endpoint} could not be reached: {OneLine(e)}", e);
        }
        catch (IOException e) when (e is not FileNotFoundException)
        {
            throw new BadInputException($"{reference}: downloading the {kind} from {_settings.Endpoint} failed: {OneLine(e)}", e);
        }
    }

    /// <summary>True when a model snapshot holds its weights: <c>model.safetensors</c>, or an index whose shards are all present.</summary>
    public static bool HasWeights(string snapshot)
    {
        if (File.Exists(Path.Combine(snapshot, ModelSource.SingleFileName))) return true;
        string index = Path.Combine(snapshot, ModelSource.IndexFileName);
        if (!File.Exists(index)) return false;
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(index));
            return doc.RootElement.TryGetProperty("weight_map", out var wm) && wm.ValueKind == JsonValueKind.Object
                && wm.EnumerateObject().Select(p => p.Value.GetString()).Distinct().All(f => f is not null && File.Exists(Path.Combine(snapshot, f)));
        }
        catch (JsonException)
        {
            return false;
        }
    }

    private string Download(string id, string revision, HubRepoType type, Func<string, bool> include, CancellationToken ct)
    {
        string api = $"{_settings.Endpoint}/api/{(type == HubRepoType.Model ? "models" : "datasets")}/{id}/revision/{Uri.EscapeDataString(revision)}";
        using var info = Send(HttpMethod.Get, api, id, type, null, ct);
        using var doc = JsonDocument.Parse(info.Content.ReadAsStream(ct));
        string commit = doc.RootElement.TryGetProperty("sha", out var sha) && sha.GetString() is { } s && CommitHash().IsMatch(s) ? s
            : throw new BadInputException($"{id}: the hub's answer for revision {revision} has no commit sha");
        var files = doc.RootElement.TryGetProperty("siblings", out var sib) && sib.ValueKind == JsonValueKind.Array
            ? sib.EnumerateArray().Select(f => f.GetProperty("rfilename").GetString()!).Where(include).ToList() : [];
        if (files.Count == 0) throw new BadInputException($"{id}: revision {revision} has no files taskmerge can use (safetensors, json, tokenizer files)");

        string repo = RepoFolder(id, type);
        string snap = Path.Combine(repo, "snapshots", commit);
        string blobs = Path.Combine(repo, "blobs");
        Directory.CreateDirectory(blobs);
        foreach (var file in files)
        {
            if (file.Split('/').Any(p => p is "" or "." or "..") || Path.IsPathRooted(file))
                throw new BadInputException($"{id}: the hub lists a file with an unsafe path '{file}'");
            string link = Path.Combine(snap, file);
            if (File.Exists(link)) continue;
            string url = $"{_settings.Endpoint}/{(type == HubRepoType.Dataset ? "datasets/" : "")}{id}/resolve/{commit}/{string.Join('/', file.Split('/').Select(Uri.EscapeDataString))}";
            string etag = FetchBlob(url, id, type, blobs, ct);
            Directory.CreateDirectory(Path.GetDirectoryName(link)!);
            string target = Path.Combine(Enumerable.Repeat("..", file.Count(c => c == '/') + 2).Append("blobs").Append(etag).ToArray());
            try { File.CreateSymbolicLink(link, target); }
            catch (IOException) { File.Copy(Path.Combine(blobs, etag), link, overwrite: true); }
            catch (UnauthorizedAccessException) { File.Copy(Path.Combine(blobs, etag), link, overwrite: true); }
        }
        if (revision != commit)
        {
            string refFile = Path.Combine(repo, "refs", revision);
            Directory.CreateDirectory(Path.GetDirectoryName(refFile)!);
            File.WriteAllText(refFile, commit);
        }
        return snap;
    }

    /// <summary>Downloads one file into <c>blobs/ETAG</c> (resuming <c>ETAG.incomplete</c>) and returns the ETag.</summary>
    private string FetchBlob(string url, string id, HubRepoType type, string blobs, CancellationToken ct)
    {
        string etag;
        using (var head = Send(HttpMethod.Head, url, id, type, null, ct, followRedirects: false))
        {
            string? raw = head.Headers.TryGetValues("X-Linked-Etag", out var linked) ? linked.FirstOrDefault()
                : head.Headers.ETag?.Tag;
            etag = raw is null ? throw new BadInputException($"{id}: the hub sent no ETag for {url}") : raw.Replace("W/", "", StringComparison.Ordinal).Trim('"');
            if (etag.Length == 0 || etag.Any(c => !char.IsAsciiLetterOrDigit(c) && c is not '-' and not '_'))
                throw new BadInputException($"{id}: the hub sent an unusable ETag '{raw}' for {url}");
        }
        string blob = Path.Combine(blobs, etag);
        if (File.Exists(blob)) return etag;
        string partial = blob + ".incomplete";
        for (int attempt = 1; ; attempt++)
        {
            long have = File.Exists(partial) ? new FileInfo(partial).Length : 0;
            try
            {
                using var resp = Send(HttpMethod.Get, url, id, type, have > 0 ? new RangeHeaderValue(have, null) : null, ct);
                bool resumed = resp.StatusCode == HttpStatusCode.PartialContent;
                using (var fs = new FileStream(partial, resumed ? FileMode.Append : FileMode.Create, FileAccess.Write))
                    resp.Content.ReadAsStream(ct).CopyTo(fs);
                if (resp.Content.Headers.ContentRange?.Length is long total && new FileInfo(partial).Length != total)
                    throw new IOException($"transfer of {url} ended at {new FileInfo(partial).Length} of {total} bytes");
                break;
            }
            catch (ResumeRefusedException) when (attempt < Attempts) { File.Delete(partial); }
            catch (IOException) when (attempt < Attempts && !ct.IsCancellationRequested) { }
            catch (HttpRequestException e) when (attempt < Attempts && !ct.IsCancellationRequested && e.StatusCode is null) { }
        }
        if (etag.Length == 64 && etag.All(char.IsAsciiHexDigit))
        {
            using var f = File.OpenRead(partial);
            string got = Convert.ToHexStringLower(SHA256.HashData(f));
            if (got != etag.ToLowerInvariant())
            {
                f.Dispose();
                File.Delete(partial);
                throw new BadInputException($"{id}: {url} has SHA-256 {got}, not the {etag} the hub announced; the partial file was removed, run again");
            }
        }
        File.Move(partial, blob, overwrite: true);
        return etag;
    }

    /// <summary>Sends a request (following redirects, the token only to the hub's own host) and maps failures to bad input naming the id.</summary>
    private HttpResponseMessage Send(HttpMethod method, string url, string id, HubRepoType type, RangeHeaderValue? range, CancellationToken ct, bool followRedirects = true)
    {
        var uri = new Uri(url);
        var hubHost = new Uri(_settings.Endpoint).Authority;
        for (int hop = 0; ; hop++)
        {
            using var req = new HttpRequestMessage(method, uri);
            if (_settings.Token is { } token && uri.Authority == hubHost) req.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
            if (range is not null) req.Headers.Range = new RangeHeaderValue { Ranges = { range.Ranges.First() } };
            var resp = _http.Send(req, HttpCompletionOption.ResponseHeadersRead, ct);
            int code = (int)resp.StatusCode;
            if (code is >= 300 and < 400 && resp.Headers.Location is { } loc)
            {
                if (!followRedirects) return resp;
                resp.Dispose();
                if (hop >= MaxRedirects) throw new BadInputException($"{id}: more than {MaxRedirects} redirects from {url}");
                uri = new Uri(uri, loc);
                continue;
            }
            if (resp.IsSuccessStatusCode) return resp;
            resp.Dispose();
            string kind = type == HubRepoType.Model ? "model" : "dataset";
            throw code switch
            {
                401 or 403 => new BadInputException($"{id}: the hub refused access ({code}): a gated or private {kind}; accept its terms on the hub and set HF_TOKEN"),
                404 => new BadInputException($"{id}: {kind} not found on the hub at {_settings.Endpoint} ({uri.AbsolutePath}: 404); check the id and revision"),
                416 => new ResumeRefusedException($"{uri}: the server cannot resume this transfer (416)"),
                _ => new BadInputException($"{id}: the hub answered {code} {resp.ReasonPhrase} for {uri}"),
            };
        }
    }

    private sealed class ResumeRefusedException(string message) : IOException(message);

    private static string OneLine(Exception e) => (e.InnerException?.Message ?? e.Message).ReplaceLineEndings(" ");

    [GeneratedRegex(@"^(?:[A-Za-z0-9][\w.-]*/)?[A-Za-z0-9][\w.-]*(?:@[\w./-]+)?$")]
    private static partial Regex RepoIdPattern();

    [GeneratedRegex(@"\.(safetensors|json|bin|pt|pth|ckpt|yml|yaml|gguf)$", RegexOptions.IgnoreCase)]
    private static partial Regex FileExtension();

    [GeneratedRegex("^[0-9a-f]{40}$")]
    private static partial Regex CommitHash();

    /// <summary>Releases the HTTP client.</summary>
    public void Dispose() => _http.Dispose();
}
