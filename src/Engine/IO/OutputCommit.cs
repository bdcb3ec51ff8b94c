using System.Text.RegularExpressions;
using static TaskMerge.Engine.IO.IOText;

namespace TaskMerge.Engine.IO;

/// <summary>What a run writes into an output directory and what it must not touch.</summary>
public sealed record OutputRequest
{
    /// <summary>Every path the run reads; the output may not be, contain or lie inside any of them.</summary>
    public IReadOnlyList<OutputInput> Inputs { get; init; } = [];

    /// <summary>Replace a non-empty directory that does not hold a previous TaskMerge output (<c>--overwrite</c>).</summary>
    public bool Overwrite { get; init; }

    /// <summary>Bytes the complete output will take, checked against the free space before anything heavy runs.</summary>
    public long PlannedBytes { get; init; }

    /// <summary>
    /// Top-level file names a previous output of this kind holds besides the weights, the index and the report
    /// (<c>merge_report.json</c> / <c>ri_report.json</c>): e.g. <c>config.json</c>, the model card, tokenizer files.
    /// </summary>
    public IReadOnlyCollection<string> OwnFiles { get; init; } = [];

    /// <summary>A previous output may hold model directories (weights, index, <c>config.json</c>), as <c>taskmerge ri</c> writes.</summary>
    public bool ModelSubdirectories { get; init; }
}

/// <summary>
/// All-or-nothing output of a directory (OUT_DIR). <see cref="Begin"/> checks the path, takes the
/// <see cref="OutputLock"/>, removes what killed runs left, checks free space and creates a staging
/// directory beside OUT_DIR (same file system). The run writes everything into <see cref="Staging"/>;
/// <see cref="Commit"/> fsyncs it and swaps it with OUT_DIR in one step (<c>renameat2(RENAME_EXCHANGE)</c>),
/// so OUT_DIR holds the complete old or the complete new output at every instant. Where the file system
/// cannot exchange, OUT_DIR is renamed aside and the staging directory renamed into place; a run killed
/// between the two renames leaves the complete old output aside, and the next run puts it back.
/// Disposing without <see cref="Commit"/> removes the staging directory; OUT_DIR is untouched.
/// </summary>
public sealed partial class OutputCommit : IDisposable
{
    private const string What = "OUT_DIR";

    private static readonly string[] Reports = ["merge_report.json", "ri_report.json"];

    [GeneratedRegex(@"^model-\d{5,}-of-\d{5,}\.safetensors$")]
    private static partial Regex ShardName();

    /// <summary>Temporary files of this and earlier releases: <c>.name.tmp-PID</c>, <c>name.tmp-PID</c>, <c>.name.tmp-PID-GUID</c>.</summary>
    [GeneratedRegex(@"^\.?.+\.tmp-(\d+)(-[0-9a-f]{32})?$")]
    private static partial Regex TempName();

    private readonly OutputLock _lock;
    private readonly string _shown;
    private readonly long _planned;
    private bool _committed;

    private OutputCommit(string shown, string real, string staging, OutputLock outputLock, long planned)
    {
        _shown = shown;
        RealPath = real;
        Staging = staging;
        _lock = outputLock;
        _planned = planned;
    }

    /// <summary>The output directory's real path (symlinks resolved).</summary>
    public string RealPath { get; }

    /// <summary>The staging directory the run writes its whole output into.</summary>
    public string Staging { get; }

    /// <summary>
    /// Checks the path and its file system (not read-only), locks, cleans up after dead runs, checks the content and
    /// the free space (after the cleanup, which may free some) and creates the staging directory of <paramref name="outDir"/>.
    /// </summary>
    public static OutputCommit Begin(string outDir, OutputRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        string real = OutputPaths.Resolve(outDir, What);
        if (File.Exists(real)) throw new BadInputException($"{What} {P(outDir)}: exists and is a file, not a directory");
        if (!Directory.Exists(real) && new FileInfo(real).LinkTarget is { } target)
            throw new BadInputException($"{What} {P(outDir)}: is a symlink to {P(target)}, which does not exist");
        if (real == "/") throw new BadInputException($"{What} {P(outDir)}: the root directory cannot be an output directory");
        OutputPaths.CheckDisjoint(real, outDir, What, request.Inputs);

        string parent = Path.GetDirectoryName(real)!;
        Guard(outDir, "cannot create its parent directory", () => Directory.CreateDirectory(parent));
        if (Directory.Exists(real) && PosixCalls.FileSystemId(real) is { } inner && PosixCalls.FileSystemId(parent) is { } outer && inner != outer)
            throw new BadInputException($"{What} {P(outDir)}: is a mount point, so it cannot be replaced in one step; write into a directory inside it");
        if (PosixCalls.FileSystemSpace(parent) is { ReadOnly: true })
            throw new BadInputException($"{What} {P(outDir)}: {P(parent)} is on a read-only file system; the output needs {request.PlannedBytes} bytes there");
        var outputLock = OutputLock.Acquire(real, outDir);
        string staging = Path.Combine(parent, $".{Path.GetFileName(real)}.taskmerge-staging-{Environment.ProcessId}");
        try
        {
            RemoveLeftovers(real);
            if (!request.Overwrite && Directory.Exists(real) && ForeignEntry(real, request) is { } foreign)
                throw new BadInputException($"{What} {P(outDir)}: is not empty and does not hold a previous TaskMerge output ({Q(foreign)} is not ours); " +
                    "pass --overwrite to replace the whole directory, or choose another path");
            CheckSpace(outDir, parent, request.PlannedBytes);
            Guard(outDir, "cannot create the staging directory", () => Directory.CreateDirectory(staging));
            TestHooks.At("begun");
            return new OutputCommit(outDir, real, staging, outputLock, request.PlannedBytes);
        }
        catch
        {
            DeleteTree(staging);
            outputLock.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Runs <paramref name="write"/> on <see cref="Staging"/>; a full disk, read-only file system or missing
    /// permission while writing is bad input naming OUT_DIR (the staging directory is then removed on dispose).
    /// </summary>
    public T Write<T>(Func<string, T> write)
    {
        try
        {
            return write(Staging);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException &&
                                  OutputFault.Classify(e, _shown, "writing the output failed", SpaceShort, Need()) is { } bad)
        {
            throw bad;
        }
    }

    /// <summary>fsyncs the staging directory and makes it OUT_DIR in one step; the old output is then removed.</summary>
    public void Commit()
    {
        ObjectDisposedException.ThrowIf(_committed, this);
        try
        {
            SyncTree(Staging);
            TestHooks.At("staged");
            string parent = Path.GetDirectoryName(RealPath)!;
            if (!Directory.Exists(RealPath))
                PosixCalls.RenameNoReplaceOrThrow(Staging, RealPath);
            else if (!TestHooks.NoExchange && PosixCalls.TryExchange(Staging, RealPath))
            {
                TestHooks.At("exchanged");
                DeleteTree(Staging); // now the old output
            }
            else
            {
                string aside = AsidePath(RealPath);
                Directory.Move(RealPath, aside);
                try
                {
                    TestHooks.At("moved-aside");
                    Directory.Move(Staging, RealPath);
                }
                catch
                {
                    Directory.Move(aside, RealPath);
                    throw;
                }
                DeleteTree(aside);
            }
            PosixCalls.Fsync(parent, directory: true);
            _committed = true;
            TestHooks.At("committed");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException &&
                                  OutputFault.Classify(e, _shown, "committing the output failed", SpaceShort, Need()) is { } bad)
        {
            throw bad;
        }
    }

    /// <summary>Removes the staging directory unless committed, and releases the lock.</summary>
    public void Dispose()
    {
        if (!_committed) DeleteTree(Staging);
        _committed = true;
        _lock.Dispose();
    }

    private bool SpaceShort() => PosixCalls.FileSystemSpace(Path.GetDirectoryName(RealPath)!) is { } s && s.Available < Math.Max(_planned, 1 << 20);

    private string Need() => _planned > 0 ? $" (the output needs {_planned} bytes)" : "";

    private static string AsidePath(string real) =>
        Path.Combine(Path.GetDirectoryName(real)!, $".{Path.GetFileName(real)}.taskmerge-old-{Environment.ProcessId}");

    /// <summary>
    /// Under the lock, every staging or aside directory of this output belongs to a dead run. An aside directory
    /// while OUT_DIR is missing is the complete old output of a run killed between its two renames: it is put back.
    /// Temporary files of dead processes inside OUT_DIR (earlier releases wrote them there) are deleted.
    /// </summary>
    private static void RemoveLeftovers(string real)
    {
        string parent = Path.GetDirectoryName(real)!, name = Path.GetFileName(real);
        foreach (string aside in SafeEnumerate(parent, $".{name}.taskmerge-old-*"))
        {
            if (!Directory.Exists(real)) Directory.Move(aside, real);
            else DeleteTree(aside);
        }
        foreach (string staging in SafeEnumerate(parent, $".{name}.taskmerge-staging-*")) DeleteTree(staging);
        if (!Directory.Exists(real)) return;
        foreach (string f in SafeEnumerate(real, "*"))
        {
            var m = TempName().Match(Path.GetFileName(f));
            if (!m.Success || !int.TryParse(m.Groups[1].Value, out int pid) || PosixCalls.ProcessAlive(pid) && pid != Environment.ProcessId) continue;
            if (Directory.Exists(f)) DeleteTree(f);
            else TryDelete(f);
        }
    }

    /// <summary>
    /// The first entry of <paramref name="dir"/> that a previous output as <paramref name="request"/> describes would not
    /// hold, or null when it holds only such an output (a report and TaskMerge's own files), RI checkpoints, or nothing.
    /// </summary>
    private static string? ForeignEntry(string dir, OutputRequest request)
    {
        var entries = new DirectoryInfo(dir).EnumerateFileSystemInfos().ToList();
        bool hasReport = entries.Any(e => e is FileInfo && Reports.Contains(e.Name));
        foreach (var e in entries)
        {
            if (e.Name == ".ri-checkpoints" && e is DirectoryInfo && e.LinkTarget is null) continue;
            if (!hasReport || e.LinkTarget is not null) return e.Name;
            if (e is FileInfo && (IsModelFile(e.Name) || Reports.Contains(e.Name) || request.OwnFiles.Contains(e.Name))) continue;
            if (e is DirectoryInfo d && request.ModelSubdirectories &&
                d.EnumerateFileSystemInfos().All(x => x is FileInfo && x.LinkTarget is null && IsModelFile(x.Name))) continue;
            return e.Name;
        }
        return null;
    }

    private static bool IsModelFile(string name) =>
        name is ModelSource.SingleFileName or ModelSource.IndexFileName or "config.json" || ShardName().IsMatch(name);

    private static void CheckSpace(string shown, string parent, long planned)
    {
        if (PosixCalls.FileSystemSpace(parent) is not { } space) return;
        if (space.Available < planned)
            throw new BadInputException($"{What} {P(shown)}: not enough free space on the file system of {P(parent)}: the output needs {planned} bytes, {space.Available} are available");
    }

    private static void Guard(string shown, string doing, Action action)
    {
        try { action(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw OutputFault.Classify(e, $"{What} {shown}", doing) ?? new BadInputException($"{What} {P(shown)}: {doing}: {OneLine(e.Message)}", e);
        }
    }

    /// <summary>fsyncs every file under <paramref name="dir"/>, then each directory bottom-up.</summary>
    internal static void SyncTree(string dir)
    {
        foreach (string f in Directory.EnumerateFiles(dir)) PosixCalls.Fsync(f, directory: false);
        foreach (string d in Directory.EnumerateDirectories(dir)) SyncTree(d);
        PosixCalls.Fsync(dir, directory: true);
    }

    private static IEnumerable<string> SafeEnumerate(string dir, string pattern)
    {
        try { return Directory.EnumerateFileSystemEntries(dir, pattern).ToArray(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return []; }
    }

    private static void DeleteTree(string dir)
    {
        try
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }

    private static void TryDelete(string path)
    {
        try { File.Delete(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }
}
