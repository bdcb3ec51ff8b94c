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
    DotNetRun("./bench/Bench.csproj", new ProcessArgumentBuilder().Append("--filter").Append(Argument("filter", "*")),
        new DotNetRunSettings { Configuration = configuration, NoBuild = true }));

Task("Bundle").Does(() =>
{
    CleanDirectory(bundleDir);
    foreach (var (project, name) in new[] { ("./src/Cli/Cli.csproj", "cli"), ("./tests/Engine.Tests/Engine.Tests.csproj", "tests"), ("./bench/Bench.csproj", "bench") })
    {
        DotNetPublish(project, new DotNetPublishSettings
        {
            Configuration = configuration,
            Runtime = "linux-x64",
            SelfContained = true,
            OutputDirectory = bundleDir + Directory(name),
            MSBuildSettings = new DotNetMSBuildSettings().WithProperty("InvariantGlobalization", "true"),
        });
    }
    CopyFile("./scripts/run-gpu-suite.sh", bundleDir + File("run-gpu-suite.sh"));
    StartProcess("tar", new ProcessSettings { Arguments = "-C artifacts -czf artifacts/taskmerge-bundle-linux-x64.tar.gz bundle" });
    Information($"bundle: artifacts/taskmerge-bundle-linux-x64.tar.gz ({new FileInfo("artifacts/taskmerge-bundle-linux-x64.tar.gz").Length / 1048576.0:F1} MiB)");
});

RunTarget(target);
