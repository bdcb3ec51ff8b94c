using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;

namespace TaskMerge.Engine.Tests.IO;

/// <summary>
/// A Hugging Face hub on 127.0.0.1 (raw HTTP/1.1 over a <see cref="TcpListener"/>, one request per connection):
/// <c>/api/{models|datasets}/ID/revision/REV</c>, HEAD/GET <c>/[datasets/]ID/resolve/COMMIT/FILE</c> with ETags
/// (LFS files answer 302 to <c>/cdn/ETAG</c>), Range requests, and one cut-off transfer per file on request.
/// </summary>
internal sealed class FakeHub : IDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private readonly Dictionary<string, (string Commit, Dictionary<string, byte[]> Files)> _repos = new();
    private readonly HashSet<string> _cutOnce = [];

    public FakeHub()
    {
        _listener.Start();
        _loop = Task.Run(Loop);
    }

    public string Endpoint => $"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}";

    /// <summary>Every request as "METHOD path [range]".</summary>
    public List<string> Requests { get; } = [];

    /// <summary>Answer 401 (gated) for every request of these ids.</summary>
    public HashSet<string> Gated { get; } = [];

    /// <summary>The token the last request carried.</summary>
    public string? LastAuthorization { get; private set; }

    public static string Commit(string seed) => Convert.ToHexStringLower(SHA1.HashData(Encoding.UTF8.GetBytes(seed)));

    /// <summary>Adds a repository (key "models/ID" or "datasets/ID") at revision <paramref name="revision"/>.</summary>
    public string Add(string kindAndId, string revision, Dictionary<string, byte[]> files)
    {
        string commit = Commit(kindAndId + revision);
        lock (_repos)
        {
            _repos[$"{kindAndId}@{revision}"] = (commit, files);
            _repos[$"{kindAndId}@{commit}"] = (commit, files);
        }
        return commit;
    }

    /// <summary>The first GET of <paramref name="file"/>'s bytes sends half of them and closes the connection.</summary>
    public void CutOnce(string file) => _cutOnce.Add(file);

    public static bool IsLfs(string file) => file.EndsWith(".safetensors", StringComparison.Ordinal);

    public static string ETag(string file, byte[] data) =>
        IsLfs(file) ? Convert.ToHexStringLower(SHA256.HashData(data)) : Convert.ToHexStringLower(SHA1.HashData(data));

    private async Task Loop()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient c;
            try { c = await _listener.AcceptTcpClientAsync(_stop.Token); }
            catch (Exception) { return; }
            _ = Task.Run(() => Serve(c));
        }
    }

    private void Serve(TcpClient client)
    {
        using (client)
        {
            var stream = client.GetStream();
            var head = new StringBuilder();
            var b = new byte[1];
            while (!head.ToString().EndsWith("\r\n\r\n", StringComparison.Ordinal) && stream.Read(b, 0, 1) == 1) head.Append((char)b[0]);
            var lines = head.ToString().Split("\r\n");
            var parts = lines[0].Split(' ');
            if (parts.Length < 2) return;
            string method = parts[0], path = Uri.UnescapeDataString(parts[1]);
            var headers = lines.Skip(1).Where(l => l.Contains(':')).ToDictionary(l => l[..l.IndexOf(':')].Trim().ToLowerInvariant(), l => l[(l.IndexOf(':') + 1)..].Trim());
            string? range = headers.GetValueOrDefault("range");
            lock (Requests) Requests.Add($"{method} {path}" + (range is null ? "" : $" {range}"));
            LastAuthorization = headers.GetValueOrDefault("authorization");
            try { Respond(stream, method, path, range); }
            catch (IOException) { }
        }
    }

    private void Respond(NetworkStream s, string method, string path, string? range)
    {
        if (Gated.Any(g => path.Contains("/" + g + "/", StringComparison.Ordinal))) { Write(s, 401, "Unauthorized", [], []); return; }
        if (path.StartsWith("/api/", StringComparison.Ordinal))
        {
            // /api/models/ORG/NAME/revision/REV
            var seg = path["/api/".Length..].Split('/');
            int r = Array.IndexOf(seg, "revision");
            string key = $"{string.Join('/', seg[..r])}@{string.Join('/', seg[(r + 1)..])}";
            (string Commit, Dictionary<string, byte[]> Files) repo;
            lock (_repos) if (!_repos.TryGetValue(key, out repo)) { Write(s, 404, "Not Found", [], []); return; }
            string json = $$"""{"sha": "{{repo.Commit}}", "siblings": [{{string.Join(", ", repo.Files.Keys.Select(f => $$"""{"rfilename": "{{f}}"}"""))}}]}""";
            Write(s, 200, "OK", [("Content-Type", "application/json")], Encoding.UTF8.GetBytes(json));
            return;
        }
        if (path.StartsWith("/cdn/", StringComparison.Ordinal))
        {
            string file = path["/cdn/".Length..];
            var data = FindFile(file);
            if (data is null) { Write(s, 404, "Not Found", [], []); return; }
            ServeBytes(s, method, file, data, range);
            return;
        }
        int resolve = path.IndexOf("/resolve/", StringComparison.Ordinal);
        if (resolve < 0) { Write(s, 404, "Not Found", [], []); return; }
        string id = path[1..resolve];
        string kind = id.StartsWith("datasets/", StringComparison.Ordinal) ? "datasets" : "models";
        if (kind == "datasets") id = id["datasets/".Length..];
        var rest = path[(resolve + "/resolve/".Length)..];
        string commit = rest[..rest.IndexOf('/')], name = rest[(rest.IndexOf('/') + 1)..];
        (string Commit, Dictionary<string, byte[]> Files) rp;
        lock (_repos) if (!_repos.TryGetValue($"{kind}/{id}@{commit}", out rp) || !rp.Files.TryGetValue(name, out _)) { Write(s, 404, "Not Found", [], []); return; }
        var bytes = rp.Files[name];
        string etag = ETag(name, bytes);
        if (IsLfs(name))
        {
            Write(s, 302, "Found", [("Location", $"/cdn/{name}"), ("X-Linked-Etag", $"\"{etag}\""), ("X-Repo-Commit", commit), ("ETag", "\"redirect-etag\"")], []);
            return;
        }
        ServeBytes(s, method, name, bytes, range, etag);
    }

    private byte[]? FindFile(string name)
    {
        lock (_repos) return _repos.Values.Select(r => r.Files.GetValueOrDefault(name)).FirstOrDefault(f => f is not null);
    }

    private void ServeBytes(NetworkStream s, string method, string file, byte[] data, string? range, string? etag = null)
    {
        var headers = new List<(string, string)>();
        if (etag is not null) headers.Add(("ETag", $"\"{etag}\""));
        if (method == "HEAD") { headers.Add(("Content-Length", data.Length.ToString())); Write(s, 200, "OK", headers, [], headOnly: true); return; }
        int from = 0;
        if (range is not null && range.StartsWith("bytes=", StringComparison.Ordinal)) from = int.Parse(range["bytes=".Length..].TrimEnd('-'));
        var body = data[from..];
        if (from > 0) headers.Add(("Content-Range", $"bytes {from}-{data.Length - 1}/{data.Length}"));
        bool cut;
        lock (_cutOnce) cut = _cutOnce.Remove(file);
        Write(s, from > 0 ? 206 : 200, from > 0 ? "Partial Content" : "OK", headers, body, cutAt: cut ? body.Length / 2 : -1);
    }

    private static void Write(NetworkStream s, int code, string reason, List<(string, string)> headers, byte[] body, int cutAt = -1, bool headOnly = false)
    {
        var sb = new StringBuilder($"HTTP/1.1 {code} {reason}\r\nConnection: close\r\n");
        foreach (var (k, v) in headers) sb.Append($"{k}: {v}\r\n");
        if (!headOnly) sb.Append($"Content-Length: {body.Length}\r\n");
        sb.Append("\r\n");
        s.Write(Encoding.ASCII.GetBytes(sb.ToString()));
        s.Write(body, 0, cutAt >= 0 ? cutAt : body.Length);
        s.Flush();
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
        try { _loop.Wait(TimeSpan.FromSeconds(5)); } catch (AggregateException) { }
    }
}
