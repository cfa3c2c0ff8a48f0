// The Gradle build of callpush-android, for teams that build callpush from source and include it
// in their app's build. The Maven build next to it (pom.xml) is what the tests and the release
// use; both compile the same sources. See README.md, "Building from source with Gradle".
//
//   gradle -p bindings-kotlin :callpush-android:assembleRelease     (Gradle 8.14.3, JDK 17)
//
// An app's own settings can include the module instead:
//   include(":callpush-android")
//   project(":callpush-android").projectDir = file("../callpush/bindings-kotlin/callpush-android")

pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}

dependencyResolutionManagement {
    repositories {
        google()
        mavenCentral()
    }
}

rootProject.name = "callpush-kotlin"
include(":callpush-android")
