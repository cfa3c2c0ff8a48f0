// Plugin versions of the standalone Gradle build (settings.gradle.kts). callpush-android applies the
// plugins without versions, so an app that includes the module gets them from its own build.
// The Kotlin plugin's version is the Maven build's kotlin.version (check-package.sh checks).
plugins {
    id("com.android.library") version "8.11.1" apply false
    id("org.jetbrains.kotlin.android") version "2.2.21" apply false
}
