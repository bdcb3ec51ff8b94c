using System.Reflection;
using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.PTX;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace TaskMerge.Engine.Tests.Kernels;

/// <summary>
/// Every kernel in TaskMerge.Kernels compiles with ILGPU's own PTX backend (PTX ISA 7.8) for sm_80 and sm_90,
/// in a context configured as the CUDA backend's (<c>Context.Create(b =&gt; b.Cuda())</c>); the PTX must
/// not call functions it does not define. (Assembling with ptxas is not part of this test yet.) ILGPU's CPU accelerator,
/// which every other kernel test uses, runs the .NET code of a kernel, so a missing device intrinsic
/// (e.g. <c>Math.Exp</c>) is only seen here. Kernels are found by reflection, so a new one is covered.
/// </summary>
public sealed class PtxCompileTests
{
    private static readonly Type[] ImplicitIndexTypes = [typeof(Index1D), typeof(Index2D), typeof(Index3D), typeof(LongIndex1D), typeof(LongIndex2D), typeof(LongIndex3D)];

    /// <summary>Public static void methods of the kernels assembly whose parameters are all kernel-legal (index, views, unmanaged structs).</summary>
    public static IEnumerable<MethodInfo> Kernels() =>
        typeof(TaskMerge.Kernels.NnMath).Assembly.GetTypes()
            .SelectMany(t => t.GetMethods(BindingFlags.Public | BindingFlags.Static | BindingFlags.DeclaredOnly))
            .Where(m => m.ReturnType == typeof(void) && !m.IsGenericMethodDefinition && m.GetParameters().Length > 0
                        && m.GetParameters().Any(p => IsView(p.ParameterType))
                        && m.GetParameters().All(p => !p.ParameterType.IsByRef && (p.ParameterType.IsValueType)))
            .OrderBy(m => m.DeclaringType!.Name + "." + m.Name);

    private static bool IsView(Type t) => t.IsGenericType && t.GetGenericTypeDefinition().Name.StartsWith("ArrayView", StringComparison.Ordinal);

    public static TheoryData<string, string> Cases()
    {
        var data = new TheoryData<string, string>();
        foreach (var arch in new[] { "SM_80", "SM_90" })
            foreach (var k in Kernels()) data.Add(arch, k.DeclaringType!.Name + "." + k.Name);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Kernel_compiles_to_ptx(string arch, string kernel)
    {
        var method = Kernels().First(k => k.DeclaringType!.Name + "." + k.Name == kernel);
        var ptx = CompilePtx(method, arch);
        Assert.Contains(".entry", ptx);
        // A call of a function the module does not define (e.g. ModF from Math.Truncate) only fails in ptxas.
        Assert.DoesNotMatch(@"\.extern\s+\.func", ptx);
    }

    [Fact]
    public void Every_kernel_family_is_enumerated()
    {
        var families = Kernels().Select(k => k.DeclaringType!.Name).Distinct().ToArray();
        Assert.True(Kernels().Count() >= 50, $"only {Kernels().Count()} kernels found");
        foreach (var family in new[] { "ElementwiseKernels", "ReduceKernels", "SelectKernels", "TiesKernels", "NnKernels", "OptimKernels", "GemmKernels", "SolverKernels", "RandomKernels" })
            Assert.Contains(family, families);
    }

    /// <summary>
    /// Every kernel's PTX assembles with NVIDIA's ptxas for sm_80 and sm_90, with no register spills and static
    /// shared memory within the 48 KiB per-block limit. ptxas is the one in <c>TASKMERGE_PTXAS</c>, which
    /// <c>.ci/run</c> unpacks from Debian's non-free nvidia-cuda-toolkit; <c>TASKMERGE_REQUIRE_PTXAS=1</c> (set
    /// there) turns its absence into a failure, elsewhere the test skips with that reason.
    /// </summary>
    [Fact]
    public void Every_kernel_assembles_with_ptxas_without_spills()
    {
        var ptxas = Environment.GetEnvironmentVariable("TASKMERGE_PTXAS");
        if (string.IsNullOrEmpty(ptxas) || !File.Exists(ptxas))
        {
            Assert.False(Environment.GetEnvironmentVariable("TASKMERGE_REQUIRE_PTXAS") == "1", $"TASKMERGE_REQUIRE_PTXAS=1 but ptxas not found at '{ptxas}'");
            Assert.Skip("ptxas not available: set TASKMERGE_PTXAS (bash .ci/run provisions it)");
        }
        var dir = Directory.CreateTempSubdirectory("tm-ptx-");
        var problems = new List<string>();
        var rows = new List<string>(); // TASKMERGE_PTXAS_TABLE=FILE writes the rows of bench/results/ptxas-resources.md
        try
        {
            foreach (var arch in new[] { "SM_80", "SM_90" })
                foreach (var kernel in Kernels())
                {
                    var name = $"{arch}-{kernel.DeclaringType!.Name}.{kernel.Name}";
                    var file = Path.Combine(dir.FullName, name + ".ptx");
                    File.WriteAllText(file, CompilePtx(kernel, arch));
                    var (exit, log) = RunPtxas(ptxas, arch.ToLowerInvariant(), file);
                    if (exit != 0) { problems.Add($"{name}: ptxas exit {exit}: {log.Trim()}"); continue; }
                    foreach (System.Text.RegularExpressions.Match m in System.Text.RegularExpressions.Regex.Matches(log, @"(\d+) bytes spill stores, (\d+) bytes spill loads"))
                        if (m.Groups[1].Value != "0" || m.Groups[2].Value != "0") problems.Add($"{name}: spills ({m.Value})");
                    foreach (System.Text.RegularExpressions.Match m in System.Text.RegularExpressions.Regex.Matches(log, @"(\d+) bytes smem"))
                        if (long.Parse(m.Groups[1].Value) > 48 * 1024) problems.Add($"{name}: {m.Value} above the 48 KiB static limit");
                    rows.Add($"| {kernel.DeclaringType!.Name}.{kernel.Name} | {arch.ToLowerInvariant()} | {Number(log, @"Used (\d+) registers")} | {Number(log, @"(\d+) bytes smem")} | "
                             + $"{Number(log, @"(\d+) bytes stack frame")} | {Number(log, @"(\d+) bytes spill stores")}/{Number(log, @"(\d+) bytes spill loads")} |");
                }
        }
        finally { dir.Delete(recursive: true); }
        if (Environment.GetEnvironmentVariable("TASKMERGE_PTXAS_TABLE") is { Length: > 0 } table)
            File.WriteAllLines(table, rows.OrderBy(r => r, StringComparer.Ordinal));
        Assert.True(problems.Count == 0, string.Join("\n", problems));
    }

    private static string Number(string log, string pattern)
    {
        var m = System.Text.RegularExpressions.Regex.Match(log, pattern);
        return m.Success ? m.Groups[1].Value : "0";
    }

    private static (int Exit, string Log) RunPtxas(string ptxas, string arch, string file)
    {
        var start = new System.Diagnostics.ProcessStartInfo(ptxas, ["-arch=" + arch, "-v", file, "-o", "/dev/null"])
        { RedirectStandardError = true, RedirectStandardOutput = true };
        using var process = System.Diagnostics.Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, stdout + stderr.Result);
    }

    /// <summary>A kernel the checks must reject in a context without ILGPU.Algorithms: exp has no PTX intrinsic there.</summary>
    internal static void ProbeExpKernel(Index1D i, ArrayView<double> x) => x[i] = Math.Exp(x[i]);

    /// <summary>A kernel whose PTX calls an undefined ModF in a context without ILGPU.Algorithms (ptxas would reject it).</summary>
    internal static void ProbeTruncateKernel(Index1D i, ArrayView<double> x) => x[i] = Math.Truncate(x[i]);

    [Fact]
    public void Checks_catch_a_missing_intrinsic_and_an_undefined_call()
    {
        var plain = () => Context.Create(builder => builder.Cuda());
        var exp = Assert.ThrowsAny<Exception>(() => CompilePtx(typeof(PtxCompileTests).GetMethod(nameof(ProbeExpKernel), BindingFlags.NonPublic | BindingFlags.Static)!, "SM_90", plain));
        Assert.Contains("does not have an intrinsic implementation", exp.ToString());
        string truncate;
        try { truncate = CompilePtx(typeof(PtxCompileTests).GetMethod(nameof(ProbeTruncateKernel), BindingFlags.NonPublic | BindingFlags.Static)!, "SM_90", plain); }
        catch (Exception e) { Assert.Contains("intrinsic", e.ToString()); return; }
        Assert.Matches(@"\.extern\s+\.func", truncate);
    }

    /// <summary>
    /// The kernels with exp, erf, tanh or log build in a plain CUDA context, without ILGPU.Algorithms' software
    /// intrinsics, and call nothing external: their math is NnMath's own + − × ÷, which the CPU accelerator runs
    /// as written, so the simulator tests measure the device arithmetic.
    /// </summary>
    [Theory]
    [InlineData("NnKernels.Gelu")]
    [InlineData("NnKernels.QuickGelu")]
    [InlineData("NnKernels.Tanh")]
    [InlineData("NnKernels.SoftmaxRows")]
    [InlineData("NnKernels.GeluBackward")]
    [InlineData("NnKernels.QuickGeluBackward")]
    [InlineData("ArceeFusionKernels.Importance")]
    [InlineData("RandomKernels.FillNormal")]
    public void Transcendental_kernels_need_no_software_intrinsics(string kernel)
    {
        var method = Kernels().Single(k => k.DeclaringType!.Name + "." + k.Name == kernel);
        string ptx = CompilePtx(method, "SM_90", () => Context.Create(builder => builder.Cuda()));
        Assert.DoesNotMatch(@"\.extern\s+\.func", ptx);
    }

    internal static string CompilePtx(MethodInfo method, string arch, Func<Context>? createContext = null)
    {
        using var context = (createContext ?? TaskMerge.Engine.Tensors.Ilgpu.IlgpuBackend.CreateCudaContext)();
        var architecture = (CudaArchitecture)(typeof(CudaArchitecture).GetProperty(arch)?.GetValue(null) ?? typeof(CudaArchitecture).GetField(arch)!.GetValue(null))!;
        using var backend = new PTXBackend(context, new CudaCapabilityContext(architecture), architecture, CudaInstructionSet.ISA_78, null!);
        var implicitlyGrouped = ImplicitIndexTypes.Contains(method.GetParameters()[0].ParameterType);
        var entry = implicitlyGrouped ? EntryPointDescription.FromImplicitlyGroupedKernel(method) : EntryPointDescription.FromExplicitlyGroupedKernel(method);
        var compiled = (PTXCompiledKernel)backend.Compile(entry, KernelSpecialization.Empty);
        return compiled.PTXAssembly;
    }
}
