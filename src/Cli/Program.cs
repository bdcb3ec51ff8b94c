using System.CommandLine;
using TaskMerge.Cli;

return CliApp.Run(args);
