// callpush-android as an Android library module, for teams that build callpush from source. It
// compiles what the Maven build compiles (the generated API and the idiomatic layer of
// ../callpush, the glue here) with this module's manifest, consumer R8 rules and libcallpush.so
// for each ABI, into the AAR that build-aar.sh otherwise assembles from the Maven build.
//
// Needs, besides JDK 17 and the Android SDK (compileSdk 34):
// - cargo: generate.sh builds the library for the host and generates the Kotlin from it, so the
//   Kotlin always matches the library it loads;
// - libcallpush.so for each ABI in cargo-ndk's layout, in target/android/jniLibs of the
//   repository (or the directory -Pcallpush.jniDir=DIR names), from the repository root:
//     cargo ndk -t arm64-v8a -t armeabi-v7a -t x86_64 --platform 26 -o target/android/jniLibs \
//         build --profile mobile -p callpush-ffi
//
//   gradle -p bindings-kotlin :callpush-android:assembleRelease
//   -> callpush-android/build/outputs/aar/callpush-android-release.aar

import org.jetbrains.kotlin.gradle.dsl.JvmTarget

plugins {
    // Versions: bindings-kotlin/build.gradle.kts, or the build of the app that includes this module.
    id("com.android.library")
    id("org.jetbrains.kotlin.android")
}

val bindings: File = projectDir.parentFile // bindings-kotlin/
val workspace: File = bindings.parentFile // the repository root, where cargo builds

// Dependency versions are the Maven build's, written once in bindings-kotlin/pom.xml.
val pom: String = bindings.resolve("pom.xml").readText()
fun pomProperty(name: String): String =
    Regex("<${Regex.escape(name)}>([^<]+)</${Regex.escape(name)}>").find(pom)?.groupValues?.get(1)
        ?: error("no <$name> in ${bindings.resolve("pom.xml")}")

val generatedKotlin: File = layout.buildDirectory.dir("generated/source/uniffi").get().asFile
val hostNative: File = layout.buildDirectory.dir("uniffi-host").get().asFile
val jniDir: File = providers.gradleProperty("callpush.jniDir").map { file(it) }
    .getOrElse(workspace.resolve("target/android/jniLibs"))
val abis = listOf("arm64-v8a", "armeabi-v7a", "x86_64")

android {
    namespace = "dev.callpush.android"
    compileSdk = 34

    defaultConfig {
        // Self-managed Telecom calls (API 26); CallNotifications.incomingCall needs 31 at run time.
        minSdk = 26
        // proguard.txt in the AAR: what JNA and the generated FFI classes need kept.
        consumerProguardFiles("consumer-rules.pro")
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_11
        targetCompatibility = JavaVersion.VERSION_11
    }

    sourceSets {
        getByName("main") {
            // src/main/AndroidManifest.xml and src/main/kotlin are the module's own (defaults).
            java.srcDirs(bindings.resolve("callpush/src/main/kotlin"), generatedKotlin)
            jniLibs.srcDir(jniDir)
        }
    }

    testOptions {
        unitTests.all { it.useJUnitPlatform() }
    }
}

kotlin {
    compilerOptions { jvmTarget.set(JvmTarget.JVM_11) }
}

// The generated Kotlin, from a host build of the library: generate.sh, as the Maven build runs it.
val generateUniffiKotlin by tasks.registering(Exec::class) {
    description = "Generates the Kotlin API of libcallpush with uniffi-bindgen (bindings-kotlin/generate.sh)."
    workingDir = workspace
    commandLine("bash", bindings.resolve("generate.sh").path, generatedKotlin.path, hostNative.path)
    outputs.dir(generatedKotlin)
    outputs.upToDateWhen { false } // cargo knows what is up to date
}

// An AAR without libcallpush.so for an ABI would fail only on a device: fail the build instead.
val checkJniLibs by tasks.registering {
    description = "Checks that $jniDir holds libcallpush.so for ${abis.joinToString()}."
    val dir = jniDir
    val wanted = abis
    val root = workspace
    doLast {
        val missing = wanted.filterNot { dir.resolve("$it/libcallpush.so").isFile }
        if (missing.isNotEmpty()) {
            throw GradleException(
                "libcallpush.so is missing for ${missing.joinToString()} in $dir. From $root run\n" +
                    "  cargo ndk ${wanted.joinToString(" ") { "-t $it" }} --platform 26 -o $dir build --profile mobile -p callpush-ffi\n" +
                    "or pass -Pcallpush.jniDir=DIR with cargo-ndk's output directory.",
            )
        }
    }
}

tasks.named("preBuild") { dependsOn(generateUniffiKotlin, checkJniLibs) }

dependencies {
    // In the public API: suspend functions and CallPush.events, a Flow.
    api("org.jetbrains.kotlinx:kotlinx-coroutines-core:${pomProperty("coroutines.version")}")
    // JNA's Android AAR (its classes and libjnidispatch.so for every ABI), never the plain jar.
    api("net.java.dev.jna:jna:${pomProperty("jna.version")}@aar")

    // RingerTest, as the Maven build runs it.
    testImplementation(kotlin("test-junit5"))
    testImplementation(platform("org.junit:junit-bom:${pomProperty("junit.version")}"))
    testImplementation("org.junit.jupiter:junit-jupiter")
    testRuntimeOnly("org.junit.platform:junit-platform-launcher")
}
