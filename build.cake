// Build targets: dotnet tool restore && dotnet cake --target=<Build|Test|Bench|Bundle>
var target = Argument("target", "Test");
var configuration = Argument("configuration", "Release");
var bundleDir = Directory("./artifacts/bundle");

Task("Build").Does(() =>
    DotNetBuild("./Engine.sln", new DotNetBuildSettings { Configuration = configuration }));

Task("Test").IsDependentOn("Build").Does(() =>
    DotNetTest("./Engine.sln", new DotNetTestSettings
    {
        Configuration = configuration,
        NoBuild = true,
    }));

Task("Bench").IsDependentOn("Build").Does(() =>
    DotNetRun("./bench/Bench.csproj", new ProcessArgumentBuilder().Append("--filter").Append(Argument("filter", "*")).Append("--inProcess"),
        new DotNetRunSettings { Configuration = configuration, NoBuild = true }));

Task("Bundle").Does(() =>
{
    CleanDirectory(bundleDir);
    // One folder: the three apps share the runtime, which keeps the compressed bundle small.
    foreach (var project in new[] { "./src/Cli/Cli.csproj", "./tests/Engine.Tests/Engine.Tests.csproj", "./bench/Bench.csproj" })
    {
        DotNetPublish(project, new DotNetPublishSettings
        {
            Configuration = configuration,
            Runtime = "linux-x64",
            SelfContained = true,
            OutputDirectory = bundleDir + Directory("bin"),
            MSBuildSettings = new DotNetMSBuildSettings().WithProperty("InvariantGlobalization", "true").WithProperty("DebugType", "none"),
        });
    }
    CopyFile("./scripts/run-gpu-suite.sh", bundleDir + File("run-gpu-suite.sh"));
    CopyFile("./scripts/gpu-smoke.sh", bundleDir + File("gpu-smoke.sh"));
    // The tests that merge the example zoo find it next to bin/ (TestPaths).
    CopyDirectory("./examples", bundleDir + Directory("examples"));
    CopyDirectory("./bench/reference", bundleDir + Directory("reference"));
    // The suite writes the commit into device.txt; the bundle has no git.
    StartProcess("git", new ProcessSettings { Arguments = "rev-parse HEAD", RedirectStandardOutput = true }, out var head);
    StartProcess("git", new ProcessSettings { Arguments = "status --porcelain --untracked-files=no", RedirectStandardOutput = true }, out var changes);
    System.IO.File.WriteAllText(bundleDir.Path + "/COMMIT", string.Join("", head) + (changes.Any() ? " (with uncommitted changes)" : "") + "\n");
    foreach (var f in GetFiles(bundleDir.Path + "/bin/*.pdb")) DeleteFile(f);
    StartProcess("tar", new ProcessSettings { Arguments = "-C artifacts -cJf artifacts/taskmerge-bundle-linux-x64.tar.xz bundle" });
    Information($"bundle: artifacts/taskmerge-bundle-linux-x64.tar.xz ({new FileInfo("artifacts/taskmerge-bundle-linux-x64.tar.xz").Length / 1048576.0:F1} MiB)");
});

RunTarget(target);
