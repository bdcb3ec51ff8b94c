using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using TaskMerge.Engine.Config;
using TaskMerge.Engine.IO;
using TaskMerge.Engine.Tensors;
using TaskMerge.Engine.Tests.Cli;

namespace TaskMerge.Engine.Tests.InputBounds;

/// <summary>
/// Seeded mutation fuzzing of the safetensors reader and the config parser. Every mutated input either works or
/// is a <see cref="BadInputException"/> with a one-line message; through the CLI it is exit 0, or exit 2 with
/// exactly one stderr line and nothing left in OUT_DIR — never exit 1, a crash or a hang. Most cases run in
/// process (fast); a few run the real CLI as a child process with a timeout.
/// </summary>
public class InputFuzzTests
{
    private const int Seed = 20_261_207;
    private const string HeaderChars = "{}[],:\"0-e.";
    private static readonly string[] DTypeNames = ["F32", "F16", "BF16", "F64", "I64", "I32", "U8", "BOOL", "F8_E4M3", "f32", "", "F32 ", "I4", "C64", "\\u0046\\u0033\\u0032"];

    /// <summary>A small valid file: F32, F16, BF16 and I64 tensors with metadata.</summary>
    private static byte[] SmallValidFile()
    {
        string dir = TestPaths.NewTempDir();
        var specs = new[]
        {
            new TensorSpec("a.weight", DType.F32, [4, 6]), new TensorSpec("b.half", DType.F16, [5]),
            new TensorSpec("c.bf16", DType.BF16, [2, 3, 2]), new TensorSpec("d.ids", DType.I64, [3]), new TensorSpec("e.empty", DType.F32, [0, 4]),
        };
        using (var w = new SafetensorsWriter(dir, specs, long.MaxValue, new Dictionary<string, string> { ["format"] = "pt" }))
        {
            w.WriteFloat32("a.weight", Enumerable.Range(0, 24).Select(i => i * 0.25f - 3).ToArray());
            w.WriteFloat32("b.half", [1, 2, 3, 4, 5]);
            w.WriteFloat32("c.bf16", Enumerable.Range(0, 12).Select(i => (float)i).ToArray());
            w.Write("d.ids", new byte[24]);
            w.WriteFloat32("e.empty", []);
            w.Commit();
        }
        return File.ReadAllBytes(Path.Combine(dir, "model.safetensors"));
    }

    private static (string Header, byte[] Data) Parts(byte[] file)
    {
        long n = (long)BinaryPrimitives.ReadUInt64LittleEndian(file);
        return (Encoding.UTF8.GetString(file, 8, (int)n), file[(int)(8 + n)..]);
    }

    /// <summary>One seeded mutation of a safetensors file.</summary>
    internal static byte[] MutateSafetensors(byte[] valid, Random rng)
    {
        var (header, data) = Parts(valid);
        long n = valid.Length - data.Length - 8;
        switch (rng.Next(11))
        {
            case 0: // byte flips, mostly in the header
            {
                var f = (byte[])valid.Clone();
                for (int k = rng.Next(1, 4); k > 0; k--)
                {
                    int at = rng.Next(10) < 8 ? rng.Next(8, (int)(8 + n)) : rng.Next(f.Length);
                    f[at] ^= (byte)(1 << rng.Next(8));
                }
                return f;
            }
            case 1: return valid[..rng.Next(valid.Length)];
            case 2: // header length lies
            {
                var f = (byte[])valid.Clone();
                ulong[] lies = [0, 1, (ulong)n - 1, (ulong)n + 1, (ulong)f.Length, (ulong)f.Length - 8, ulong.MaxValue, 1UL << 40, SafetensorsFile.MaxHeaderBytes + 1, (ulong)rng.NextInt64()];
                BinaryPrimitives.WriteUInt64LittleEndian(f, lies[rng.Next(lies.Length)]);
                return f;
            }
            case 3: // huge or odd shapes
            {
                string[] shapes = ["[4294967296,4294967296]", "[-1,6]", "[1e30]", "[4.5,6]", "[9223372036854775807,2]", "[]", "[24]", "[6,4]", "[\"4\",6]", "null", "[[4],6]", "[4,6,1,1,1,1,1,1,1,1,1,1,1,1,1,1]", "[2147483648]"];
                return ModelFiles.Join(header.Replace("\"shape\":[4,6]", "\"shape\":" + shapes[rng.Next(shapes.Length)]), data);
            }
            case 4: // offsets out of range or overlapping
            {
                var (h, d) = (header, data);
                int at = h.IndexOf("\"data_offsets\":[", rng.Next(h.Length / 2), StringComparison.Ordinal);
                if (at < 0) at = h.IndexOf("\"data_offsets\":[", StringComparison.Ordinal);
                int end = h.IndexOf(']', at);
                string[] offs = ["[0,96]", "[0,0]", "[96,0]", "[-8,88]", "[0,18446744073709551615]", "[0,9223372036854775807]", "[1,97]", "[8,104]", "[0]", "[0,96,5]", "[0.5,96]", "{}", $"[{d.Length},{d.Length + 96}]"];
                return ModelFiles.Join(h[..(at + 15)] + offs[rng.Next(offs.Length)] + h[(end + 1)..], d);
            }
            case 5: // dtype names
            {
                int at = header.IndexOf("\"dtype\":\"", rng.Next(header.Length / 2), StringComparison.Ordinal);
                if (at < 0) at = header.IndexOf("\"dtype\":\"", StringComparison.Ordinal);
                int end = header.IndexOf('"', at + 9);
                return ModelFiles.Join(header[..(at + 9)] + DTypeNames[rng.Next(DTypeNames.Length)] + header[end..], data);
            }
            case 6: // JSON nesting
            {
                int depth = new[] { 2, 15, 16, 17, 64, 1000, 100_000 }[rng.Next(7)];
                string deep = new string('[', depth) + new string(']', depth);
                return ModelFiles.Join(header.Replace("\"format\":\"pt\"", "\"format\":" + deep), data);
            }
            case 7: // string escapes and odd characters
            {
                string[] inserts = ["\\ud800", "\\udc00x", "\\ud83d\\ude00", "\\u0000", "\\n", "\\\"", "\u00e9", "\\x41", "\\", "\t"];
                return ModelFiles.Join(header.Replace("a.weight", "a" + inserts[rng.Next(inserts.Length)] + ".weight"), data);
            }
            case 8: // duplicate keys and entries
            {
                string[] dups = ["\"a.weight\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},", "\"__metadata__\":{},", "\"__metadata__\":{\"x\":1},", "\"z\":5,", "\"z\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0],\"extra\":1},"];
                return ModelFiles.Join("{" + dups[rng.Next(dups.Length)] + header[1..], data);
            }
            case 9: // character-level edits of the header text
            {
                var sb = new StringBuilder(header);
                for (int k = rng.Next(1, 4); k > 0; k--)
                {
                    int at = rng.Next(sb.Length);
                    switch (rng.Next(3))
                    {
                        case 0: sb.Remove(at, 1); break;
                        case 1: sb.Insert(at, HeaderChars[rng.Next(HeaderChars.Length)]); break;
                        default: sb.Insert(at, sb[at]); break;
                    }
                }
                return ModelFiles.Join(sb.ToString(), data);
            }
            default: // data section length changes (trailing or missing bytes)
                return ModelFiles.Join(header, rng.Next(2) == 0 ? [.. data, .. new byte[rng.Next(1, 9)]] : data[..Math.Max(0, data.Length - rng.Next(1, 9))]);
        }
    }

    /// <summary>Opens and fully reads <paramref name="path"/>: success or one-line bad input; anything else fails the test.</summary>
    private static void OpenAndRead(string path, string caseName)
    {
        try
        {
            using var f = SafetensorsFile.Open(path);
            foreach (var t in f.Tensors)
            {
                if (t.DType.IsFloat()) f.ReadFloat32(t);
                else _ = f.GetBytes(t).Length;
            }
        }
        catch (BadInputException e)
        {
            Assert.True(!e.Message.Contains('\n') && !e.Message.Contains('\r'), $"{caseName}: message spans lines: {e.Message}");
            Assert.True(e.Message.StartsWith(path, StringComparison.Ordinal), $"{caseName}: message does not name the file: {e.Message}");
        }
        catch (Exception e)
        {
            Assert.Fail($"{caseName}: {e.GetType().Name}: {e.Message}");
        }
    }

    [Fact]
    public void Safetensors_reader_mutations_are_opened_or_bad_input()
    {
        var rng = new Random(Seed);
        var valid = SmallValidFile();
        string dir = TestPaths.NewTempDir();
        for (int i = 0; i < 3000; i++)
        {
            string path = Path.Combine(dir, $"case{i % 8}.safetensors");
            File.WriteAllBytes(path, MutateSafetensors(valid, rng));
            OpenAndRead(path, $"case {i}");
        }
    }

    /// <summary>Asserts the CLI bad-input contract for one run: exit 0, or exit 2 with one line and an empty OUT_DIR.</summary>
    private static void AssertCliOutcome(int code, string stderr, string outDir, string caseName)
    {
        var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => !l.StartsWith("warning:")).ToArray();
        Assert.True(code is 0 or 2, $"{caseName}: exit {code}: {stderr}");
        if (code == 0) return;
        Assert.True(lines.Length == 1 && lines[0].StartsWith("error: "), $"{caseName}: stderr: {stderr}");
        Assert.True(!Directory.Exists(outDir) || Directory.GetFileSystemEntries(outDir).Length == 0,
            $"{caseName}: left in OUT_DIR: {(Directory.Exists(outDir) ? string.Join(", ", Directory.GetFileSystemEntries(outDir)) : "")}");
    }

    [Fact]
    public void Merges_with_a_mutated_expert_exit_0_or_2()
    {
        var rng = new Random(Seed + 1);
        string dir = TestPaths.NewTempDir();
        string expert = ModelFiles.CopyZoo(dir, "expert_1", "expert");
        string file = Path.Combine(expert, "model.safetensors");
        var valid = File.ReadAllBytes(file);
        var zooValid = SmallValidFile();
        string cfg = BadInputAssert.Config(dir, $"merge_method: ties\nbase_model: ZOO/base\nmodels:\n  - model: ZOO/expert_0\n    parameters: {{density: 0.5}}\n  - model: {expert}\n    parameters: {{density: 0.5}}\n");
        for (int i = 0; i < 60; i++)
        {
            File.WriteAllBytes(file, i % 10 == 9 ? MutateSafetensors(zooValid, rng) : MutateSafetensors(valid, rng));
            string outDir = Path.Combine(dir, $"out{i}");
            var (code, _, err) = CliRunner.Run("merge", cfg, outDir, "--device", "cpu", "--quiet");
            AssertCliOutcome(code, err, outDir, $"case {i}");
        }
    }

    /// <summary>One seeded mutation of a YAML config text.</summary>
    internal static string MutateYaml(string valid, Random rng)
    {
        var sb = new StringBuilder(valid);
        switch (rng.Next(8))
        {
            case 0:
            case 1:
                for (int k = rng.Next(1, 5); k > 0; k--)
                {
                    int at = rng.Next(sb.Length);
                    const string special = "[]{}:,-&*!|>'\"#%@`\n\t ?\\";
                    switch (rng.Next(3))
                    {
                        case 0: sb.Remove(at, 1); break;
                        case 1: sb.Insert(at, special[rng.Next(special.Length)]); break;
                        default: sb.Insert(at, sb[at]); break;
                    }
                }
                return sb.ToString();
            case 2:
            {
                var lines = valid.Split('\n').ToList();
                int l = rng.Next(lines.Count);
                if (rng.Next(2) == 0) lines.Insert(l, lines[l]); else lines[l] = new string(' ', rng.Next(8)) + lines[l].TrimStart();
                return string.Join('\n', lines);
            }
            case 3:
            {
                int depth = new[] { 10, 63, 64, 65, 5000, 100_000 }[rng.Next(6)];
                return valid + "extra: " + new string('[', depth) + new string(']', depth) + "\n";
            }
            case 4:
            {
                var bomb = new StringBuilder("  int8_mask: &b0 [true, true, true, true, true, true, true, true]\n");
                int levels = rng.Next(2, 9);
                for (int i = 1; i < levels; i++) bomb.Append($"  normalize{i}: &b{i} [*b{i - 1}, *b{i - 1}, *b{i - 1}, *b{i - 1}, *b{i - 1}, *b{i - 1}, *b{i - 1}, *b{i - 1}]\n");
                return valid.Replace("  int8_mask: true\n", bomb.ToString());
            }
            case 5:
            {
                string[] values = ["1e400", ".nan", "-.inf", "-1", "1.5", "99999999999", "0x10", "~", "[]", "{}", "\"\"", "1_000", "NaN"];
                string[] keys = ["density: 0.5", "weight: 1.0", "weight: 0.8", "normalize: true"];
                string key = keys[rng.Next(keys.Length)];
                return valid.Replace(key, key[..(key.IndexOf(':') + 1)] + " " + values[rng.Next(values.Length)]);
            }
            case 6:
            {
                string[] docs = ["---\n", "\n---\nmerge_method: linear\n", "\n...\n", "%YAML 1.2\n---\n", "\uFEFF", "\0", "\u0007", "*undefined\n", "!!python/object:os.system ls\n"];
                string d = docs[rng.Next(docs.Length)];
                return rng.Next(2) == 0 ? d + valid : valid + d;
            }
            default:
                return valid[..rng.Next(valid.Length)];
        }
    }

    private static string ValidYaml() =>
        File.ReadAllText(Path.Combine(TestPaths.Examples, "ties.yml")).Replace("zoo/", BadInputAssert.Zoo + "/");

    [Fact]
    public void Config_parser_mutations_parse_or_are_bad_input()
    {
        var rng = new Random(Seed + 2);
        string valid = ValidYaml();
        for (int i = 0; i < 3000; i++)
        {
            string text = MutateYaml(valid, rng);
            try
            {
                MergeConfig.Parse(text, "fuzz.yml");
            }
            catch (BadInputException e)
            {
                Assert.True(!e.Message.Contains('\n'), $"case {i}: message spans lines: {e.Message}");
                Assert.True(e.Message.Contains("fuzz.yml"), $"case {i}: message does not name the file: {e.Message}");
            }
            catch (Exception e)
            {
                Assert.Fail($"case {i}: {e.GetType().Name}: {e.Message}\n{text}");
            }
        }
    }

    [Fact]
    public void Merges_with_a_mutated_config_exit_0_or_2()
    {
        var rng = new Random(Seed + 3);
        string valid = ValidYaml();
        string dir = TestPaths.NewTempDir();
        for (int i = 0; i < 60; i++)
        {
            string cfg = Path.Combine(dir, $"case{i}.yml");
            File.WriteAllText(cfg, MutateYaml(valid, rng));
            string outDir = Path.Combine(dir, $"out{i}");
            var (code, _, err) = CliRunner.Run("merge", cfg, outDir, "--device", "cpu", "--quiet");
            AssertCliOutcome(code, err, outDir, $"case {i}: {File.ReadAllText(cfg)}");
        }
    }

    [Fact]
    public async Task Real_cli_process_on_mutated_inputs_exits_0_or_2_without_hanging()
    {
        string cli = Path.Combine(AppContext.BaseDirectory, "taskmerge.dll");
        string dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } h ? h : "dotnet";
        var rng = new Random(Seed + 4);
        string dir = TestPaths.NewTempDir();
        string expert = ModelFiles.CopyZoo(dir, "expert_1", "expert");
        string file = Path.Combine(expert, "model.safetensors");
        var valid = File.ReadAllBytes(file);
        string validYaml = ValidYaml();
        for (int i = 0; i < 8; i++)
        {
            string cfg = Path.Combine(dir, $"case{i}.yml");
            if (i % 2 == 0)
            {
                File.WriteAllBytes(file, MutateSafetensors(valid, rng));
                File.WriteAllText(cfg, $"merge_method: task_arithmetic\nbase_model: {BadInputAssert.Zoo}/base\nmodels: [{expert}]\n");
            }
            else
            {
                File.WriteAllBytes(file, valid);
                File.WriteAllText(cfg, MutateYaml(validYaml, rng));
            }
            string outDir = Path.Combine(dir, $"out{i}");
            var psi = new ProcessStartInfo(dotnet) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
            foreach (var a in new[] { cli, "merge", cfg, outDir, "--device", "cpu", "--quiet" }) psi.ArgumentList.Add(a);
            using var p = Process.Start(psi)!;
            var ct = TestContext.Current.CancellationToken;
            var stderr = p.StandardError.ReadToEndAsync(ct);
            var stdout = p.StandardOutput.ReadToEndAsync(ct);
            using var limit = CancellationTokenSource.CreateLinkedTokenSource(ct);
            limit.CancelAfter(TimeSpan.FromSeconds(120));
            try { await p.WaitForExitAsync(limit.Token); }
            catch (OperationCanceledException)
            {
                p.Kill(entireProcessTree: true);
                Assert.Fail($"case {i}: the CLI hung");
            }
            AssertCliOutcome(p.ExitCode, await stderr, outDir, $"case {i}");
            await stdout;
        }
    }
}
