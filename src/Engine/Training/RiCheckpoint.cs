using System.Globalization;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using TaskMerge.Engine.IO;
using TaskMerge.Engine.Models;
using TaskMerge.Engine.Tensors;
using static TaskMerge.Engine.IO.IOText;

namespace TaskMerge.Engine.Training;

/// <summary>
/// The identity of one expert's RI run: SHA-256 over everything that determines its result — the
/// tower config, the options that change the numbers (not threads, checkpoint interval or caching),
/// the expert index and task count, the float32 contents of θ0, the expert and every head, and the
/// auxiliary data's identity. A checkpoint resumes only a run with the same fingerprint.
/// </summary>
internal static class RiFingerprint
{
    /// <summary>Hex SHA-256 of the run's inputs.</summary>
    public static string Of(ClipVisionConfig config, RiOptions o, IReadOnlyDictionary<string, float[]> pretrained,
        IReadOnlyDictionary<string, float[]> expert, IReadOnlyList<float[]> heads, int expertIndex, string auxIdentity)
    {
        using var h = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        void Text(string s) => h.AppendData(System.Text.Encoding.UTF8.GetBytes(s + "\n"));
        void Floats(float[] a) => h.AppendData(MemoryMarshal.AsBytes(a.AsSpan()));
        Text("taskmerge-ri-1");
        Text(FormattableString.Invariant(
            $"{config.HiddenSize} {config.IntermediateSize} {config.NumHiddenLayers} {config.NumAttentionHeads} {config.NumChannels} {config.ImageSize} {config.PatchSize} {config.HiddenAct} {config.LayerNormEps:R} {config.ProjectionDim}"));
        Text(FormattableString.Invariant(
            $"{o.Alpha:R} {o.LearningRate:R} {o.WeightDecay:R} {o.Beta1:R} {o.Beta2:R} {o.Eps:R} {o.Steps} {o.BatchSize} {o.Temperature:R} {o.ReverseKl} {o.Seed} {o.LrSchedule} {o.WarmupSteps} {o.GradClip:R}"));
        Text(FormattableString.Invariant($"expert {expertIndex} of {heads.Count}"));
        Text(auxIdentity);
        foreach (var (name, _) in ClipVisionTraining.ParameterShapes(config))
        {
            Text(name);
            Floats(pretrained[name]);
            Floats(expert[name]);
        }
        foreach (var head in heads) Floats(head);
        return Convert.ToHexStringLower(h.GetHashAndReset());
    }
}

/// <summary>
/// A directory of RI checkpoints, one file per expert (<c>expert-&lt;k&gt;.safetensors</c>), written
/// every <see cref="Every"/> steps and when an expert finishes. A file that does not match the run
/// (other inputs or options) or cannot be read is ignored with a warning and overwritten.
/// </summary>
internal sealed class RiCheckpointStore
{
    private readonly Action<string> _warn;
    private readonly Action<string> _note;

    /// <summary>A store in <paramref name="directory"/> (created on the first write); messages go to <paramref name="warn"/> and <paramref name="note"/>.</summary>
    public RiCheckpointStore(string directory, int every, Action<string>? warn = null, Action<string>? note = null)
    {
        if (every < 1) throw new ArgumentOutOfRangeException(nameof(every));
        (Directory, Every, _warn, _note) = (directory, every, warn ?? (_ => { }), note ?? (_ => { }));
    }

    /// <summary>The checkpoint directory.</summary>
    public string Directory { get; }

    /// <summary>Steps between checkpoints of a running expert.</summary>
    public int Every { get; }

    /// <summary>The checkpoint of expert <paramref name="expert"/> for a run with <paramref name="fingerprint"/>.</summary>
    public RiCheckpoint Open(int expert, string fingerprint) =>
        new(Path.Combine(Directory, $"expert-{expert}.safetensors"), expert, fingerprint, Every, _warn, _note);

    /// <summary>Removes the checkpoint files (and leftovers of interrupted writes), then the directory when it is empty.</summary>
    public void Delete()
    {
        if (!System.IO.Directory.Exists(Directory)) return;
        foreach (var f in System.IO.Directory.GetFiles(Directory, "expert-*.safetensors")) File.Delete(f);
        foreach (var d in System.IO.Directory.GetDirectories(Directory, ".expert-*.safetensors.tmp-*")) System.IO.Directory.Delete(d, recursive: true);
        if (!System.IO.Directory.EnumerateFileSystemEntries(Directory).Any()) System.IO.Directory.Delete(Directory);
    }
}

/// <summary>
/// One expert's checkpoint file: the student parameters, Adam's m and v (absent once finished), the
/// per-step curves so far, and metadata (fingerprint, completed step, SHA-256 of the tensor data).
/// The batch order is not stored: it is replayed from the seed (step × batch indices consumed).
/// </summary>
internal sealed class RiCheckpoint
{
    private const string FingerprintKey = "taskmerge_ri_fingerprint";
    private const string StepKey = "taskmerge_ri_step";
    private const string DataHashKey = "taskmerge_ri_data_sha256";

    private readonly int _expert;
    private readonly string _fingerprint;
    private readonly int _every;
    private readonly Action<string> _warn;
    private readonly Action<string> _note;

    internal RiCheckpoint(string path, int expert, string fingerprint, int every, Action<string> warn, Action<string> note)
    {
        (Path, _expert, _fingerprint, _every, _warn, _note) = (path, expert, fingerprint, every, warn, note);
    }

    /// <summary>The checkpoint file.</summary>
    public string Path { get; }

    /// <summary>
    /// Loads a matching checkpoint into <paramref name="parameters"/>, <paramref name="m"/>,
    /// <paramref name="v"/> and <paramref name="curves"/> (in place) and returns its completed step
    /// (<paramref name="steps"/> for a finished expert); 0 when there is none, it does not match or it
    /// is damaged (with a warning; the arrays are then back at <paramref name="initial"/>, zero moments
    /// and empty curves).
    /// </summary>
    public int Restore(IReadOnlyDictionary<string, float[]> initial, Dictionary<string, float[]> parameters,
        Dictionary<string, float[]> m, Dictionary<string, float[]> v, RiCurves curves, int steps)
    {
        if (!File.Exists(Path)) return 0;
        bool touched = false;
        try
        {
            using var f = SafetensorsFile.Open(Path);
            if (!f.Metadata.TryGetValue(FingerprintKey, out var fp) || fp != _fingerprint)
            {
                _warn($"{P(Path)}: RI checkpoint of expert {_expert} was written for other inputs or options; ignored (expert {_expert} starts at step 0, the file is overwritten)");
                return 0;
            }
            if (!f.Metadata.TryGetValue(StepKey, out var stepText) || !int.TryParse(stepText, NumberStyles.None, CultureInfo.InvariantCulture, out int step)
                || step < 1 || step > steps)
                throw new InvalidDataException($"step \"{stepText}\" is not in [1, {steps}]");
            bool finished = step == steps;
            var plan = Tensors(parameters, finished ? null : m, finished ? null : v, curves, step);
            var infos = new List<TensorInfo>();
            foreach (var t in plan)
            {
                if (!f.TryGet(t.Name, out var info)) throw new InvalidDataException($"tensor {Q(t.Name)} is missing");
                if (info.DType != t.DType || info.ElementCount != t.Length)
                    throw new InvalidDataException($"tensor {Q(t.Name)} is {info.DType.SafetensorsName()} {info.ShapeString}, expected {t.DType.SafetensorsName()} [{t.Length}]");
                infos.Add(info);
            }
            touched = true;
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            for (int i = 0; i < plan.Count; i++)
            {
                var bytes = f.GetBytes(infos[i]);
                hash.AppendData(bytes);
                bytes.CopyTo(plan[i].Bytes);
            }
            if (!f.Metadata.TryGetValue(DataHashKey, out var dataHash) || dataHash != Convert.ToHexStringLower(hash.GetHashAndReset()))
                throw new InvalidDataException("tensor data does not match its checksum");
            if (finished) _note($"RI expert {_expert}: finished run restored from {P(Path)}");
            else _note($"RI expert {_expert}: resuming at step {step + 1} from {P(Path)}");
            return step;
        }
        catch (Exception e) when (e is BadInputException or InvalidDataException or IOException or UnauthorizedAccessException)
        {
            if (touched)
            {
                foreach (var (name, a) in parameters) initial[name].CopyTo(a, 0);
                foreach (var a in m.Values.Concat(v.Values)) Array.Clear(a);
                curves.Clear();
            }
            _warn($"{P(Path)}: RI checkpoint of expert {_expert} is unreadable ({OneLine(e.Message)}); ignored (expert {_expert} starts at step 0, the file is overwritten)");
            return 0;
        }
    }

    /// <summary>Whether <see cref="AfterStep"/> writes at <paramref name="step"/> of <paramref name="steps"/> (so callers fetch the state only then).</summary>
    public bool IsDue(int step, int steps) => step == steps || step % _every == 0;

    /// <summary>Writes the checkpoint when <paramref name="step"/> is a multiple of the interval (with moments) or the last step (without).</summary>
    public void AfterStep(int step, int steps, Dictionary<string, float[]> parameters, Dictionary<string, float[]> m, Dictionary<string, float[]> v, RiCurves curves)
    {
        if (!IsDue(step, steps)) return;
        bool finished = step == steps;
        var plan = Tensors(parameters, finished ? null : m, finished ? null : v, curves, step);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var t in plan) hash.AppendData(t.Bytes);
        var metadata = new Dictionary<string, string>
        {
            [FingerprintKey] = _fingerprint,
            [StepKey] = step.ToString(CultureInfo.InvariantCulture),
            [DataHashKey] = Convert.ToHexStringLower(hash.GetHashAndReset()),
        };
        System.IO.Directory.CreateDirectory(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(Path))!);
        SafetensorsSingleFile.Write(Path, plan.Select(t => new TensorSpec(t.Name, t.DType, [t.Length])), w =>
        {
            foreach (var t in plan) w.Write(t.Name, t.Bytes);
        }, metadata);
    }

    /// <summary>A tensor of the checkpoint file and the live array it is written from or read into.</summary>
    private readonly record struct Entry(string Name, float[]? Floats, double[]? Doubles, int Length)
    {
        public DType DType => Floats is null ? DType.F64 : DType.F32;

        public Span<byte> Bytes => Floats is not null
            ? MemoryMarshal.AsBytes(Floats.AsSpan(0, Length))
            : MemoryMarshal.AsBytes(Doubles!.AsSpan(0, Length));
    }

    private static List<Entry> Tensors(Dictionary<string, float[]> parameters,
        Dictionary<string, float[]>? m, Dictionary<string, float[]>? v, RiCurves curves, int step)
    {
        var o = new List<Entry>();
        void Add(string prefix, Dictionary<string, float[]>? d)
        {
            if (d is null) return;
            foreach (var (name, a) in d) o.Add(new Entry(prefix + name, a, null, a.Length));
        }
        Add("param/", parameters);
        Add("adam_m/", m);
        Add("adam_v/", v);
        foreach (var (name, values) in curves.All) o.Add(new Entry("curve/" + name, null, values, step));
        return o;
    }
}
