// Checks that a file is the .NET assembly a package promises, under Mono; for check-package.sh.
//
//   mono AssemblyCheck.exe FILE NAME VERSION PACKAGE_VERSION [LABEL]
//
// FILE must be an assembly named NAME with the AssemblyVersion VERSION (what the .NET SDK derives
// from the package version: 0.2.0-beta.1 gives 0.2.0.0), and its AssemblyInformationalVersion, when
// Mono can read it, PACKAGE_VERSION (the SDK may append "+<commit>"). One ok/FAIL line (tab after
// the word) per check, naming the file LABEL (default: its name); exits 1 when one failed.
using System;
using System.Reflection;

internal static class AssemblyCheck
{
    private static int failed;

    private static int Main(string[] args)
    {
        if (args.Length != 4 && args.Length != 5)
        {
            Console.Error.WriteLine("usage: AssemblyCheck.exe FILE NAME VERSION PACKAGE_VERSION [LABEL]");
            return 2;
        }
        string file = args[0], name = args[1], version = args[2], packageVersion = args[3];
        string label = args.Length == 5 ? args[4] : System.IO.Path.GetFileName(file);
        AssemblyName assembly;
        try
        {
            assembly = AssemblyName.GetAssemblyName(file);
        }
        catch (Exception e)
        {
            Check(false, "", label + ": not a .NET assembly (" + e.GetType().Name + ": " + e.Message + ")");
            return 1;
        }
        Check(assembly.Name == name, label + ": a .NET assembly named " + name,
            label + ": the assembly is named " + assembly.Name + ", not " + name);
        Check(assembly.Version != null && assembly.Version.ToString() == version,
            label + ": assembly version " + version,
            label + ": assembly version " + assembly.Version + ", not " + version + " (from the package version " + packageVersion + ")");

        string informational = null;
        try
        {
            foreach (var attribute in CustomAttributeData.GetCustomAttributes(Assembly.ReflectionOnlyLoadFrom(file)))
            {
                if (attribute.AttributeType.FullName == "System.Reflection.AssemblyInformationalVersionAttribute")
                {
                    informational = (string)attribute.ConstructorArguments[0].Value;
                }
            }
        }
        catch (Exception e)
        {
            // A netstandard2.0 assembly built by the .NET SDK references netstandard.dll, which
            // Mono's reflection-only load cannot always resolve; name and version are checked.
            Console.WriteLine("info\t" + label + ": informational version not readable under Mono (" + e.GetType().Name + ")");
            return failed == 0 ? 0 : 1;
        }
        Check(informational == packageVersion || (informational != null && informational.StartsWith(packageVersion + "+", StringComparison.Ordinal)),
            label + ": informational version " + informational,
            label + ": informational version " + (informational ?? "(none)") + ", not " + packageVersion);
        return failed == 0 ? 0 : 1;
    }

    private static void Check(bool good, string ok, string bad)
    {
        if (good)
        {
            Console.WriteLine("ok\t" + ok);
        }
        else
        {
            failed++;
            Console.WriteLine("FAIL\t" + bad);
        }
    }
}
