package io.replicator.replica;

import static com.google.common.base.Preconditions.checkArgument;
import static com.google.common.base.Preconditions.checkNotNull;

import com.google.protobuf.Descriptors;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Message;
import io.replicator.DelayedFollower;
import io.replicator.change.ChangeProtos;
import io.replicator.change.FileChange;
import io.replicator.change.MalformedChangeException;
import io.replicator.proto.Change;
import io.replicator.proto.DelayControls;
import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.OptionalLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The applying side of a delayed follower: one thread takes the oldest change of the spill log,
 * asks {@link DelaySchedule} whether it may be applied, and applies it to the tree with a {@link
 * ChangeApplier} of its own; the operator's controls (pause, apply-until) are kept in a file beside
 * the log, so a restart holds where the operator held.
 *
 * <h2>Design</h2>
 * The log is written by the {@link DelayIntake} of the current session (one at a time) and read
 * here; it is the follower's copy of everything the primary sent, so the follower's generations
 * describe the tree and the log together, and a restart resumes from the log. Applying lags by
 * design, so a resync that compares against the tree finds differences the log already holds; the
 * repeated changes land in the log after the originals, and a namespace change that no longer
 * fits the tree is skipped (as during any resync) rather than stopping the copy. When the log is
 * full the session stops, the primary's bitmap covers what follows, and connections are refused
 * until the log has drained below half: going back before that point is then impossible, and
 * status says since when.
 */
final class DelayedApply implements DelayedFollower, Closeable {
  private static final Logger log = LoggerFactory.getLogger(DelayedApply.class);
  /** Under the replica's metadata directory. */
  static final String DIRECTORY = "delay-log";
  private static final String CONTROLS = "controls";
  /** Applied entries recorded with one pointer write at most this far apart. */
  private static final int RECORD_EVERY = 256;
  private static final Duration RETRY_AFTER_FAILURE = Duration.ofSeconds(5);

  private final Path root;
  private final Path dir;
  private final DelayLog spill;
  private final Duration delay;
  private final Clock clock;
  private final ChangeApplier.Options options;
  private final ApplyFaults faults;
  private final Object signal = new Object();
  private final Object appendLock = new Object();
  private final Thread thread;

  private volatile DelayControls controls;
  private volatile String problem;
  private volatile boolean closed;

  private DelayedApply(Path root, Path dir, DelayLog spill, Duration delay, Clock clock,
      ChangeApplier.Options options, ApplyFaults faults, DelayControls controls) {
    this.root = root;
    this.dir = dir;
    this.spill = spill;
    this.delay = delay;
    this.clock = clock;
    this.options = options;
    this.faults = faults;
    this.controls = controls;
    this.thread = new Thread(this::run, "replica-delayed-apply");
    thread.setDaemon(true);
  }

  /** Opens (or creates) the spill log under {@code metadataDirectory} and starts applying. */
  static DelayedApply start(Path root, Path metadataDirectory, Duration delay, long capacityBytes,
      ChangeApplier.Options options, ApplyFaults faults, Clock clock) throws IOException {
    checkNotNull(delay, "delay");
    checkArgument(!delay.isNegative(), "negative delay");
    Path dir = Files.createDirectories(metadataDirectory.resolve(DIRECTORY));
    DelayLog spill = DelayLog.open(dir, capacityBytes);
    DelayControls controls;
    try {
      controls = readControls(dir);
    } catch (IOException e) {
      spill.close();
      throw e;
    }
    DelayedApply d = new DelayedApply(root, dir, spill, delay, clock, options, faults, controls);
    log.info("delayed follower: {} delay, spill log {} of {} bytes used, {} change(s) to apply{}", delay,
        spill.diskBytes(), capacityBytes, spill.backlogChanges(), controls.getPaused() ? ", paused" : "");
    d.thread.start();
    return d;
  }

  // ---------------------------------------------------------------- the intake's side

  /** The session's stage: logs what it receives. */
  DelayIntake intake(ChangeApplier.Listener listener) {
    return new DelayIntake(this, listener, clock);
  }

  DelayLog log() {
    return spill;
  }

  /**
   * Logs one change received at {@code millis}; false when the log is full (or still draining after
   * it was), which is then remembered durably.
   */
  boolean append(byte[] header, ByteBuffer payload, long millis) throws IOException {
    synchronized (appendLock) {
      if (controls.getRefusing()) {
        return false;
      }
      if (spill.append(spill.lastSeq() + 1, millis, header, payload)) {
        return true;
      }
      log.warn("the delayed follower's spill log is full ({} of {} bytes); changes from now on are left to the "
          + "primary's dirty bitmap until it drains below half", spill.diskBytes(), spill.capacityBytes());
      updateControls(c -> c.setRefusing(true).setOverflowedAtMillis(millis));
      return false;
    }
  }

  void sync() throws IOException {
    spill.sync();
    synchronized (signal) {
      signal.notifyAll();
    }
  }

  /** Why a primary is refused now (the log full and not emptied yet), or null. */
  String refusal() {
    synchronized (appendLock) {
      if (!controls.getRefusing()) {
        return null;
      }
      if (spill.backlogChanges() == 0) {
        try {
          updateControls(c -> c.setRefusing(false).setCatchingUp(true));
          log.info("the delayed follower's spill log is applied: taking changes again, the catch-up resync "
              + "applied at once");
          return null;
        } catch (IOException e) {
          return "cannot record that the spill log drained: " + e.getMessage();
        }
      }
      return "this delayed follower's spill log was full; it takes changes again once the " + spill.backlogChanges()
          + " change(s) in it are applied";
    }
  }

  /**
   * Whether a resync starting now is the catch-up after the log was full: nothing is logged and
   * not applied, so its changes may go straight to the tree without passing anything older.
   */
  boolean catchingUp() {
    return controls.getCatchingUp() && spill.backlogChanges() == 0;
  }

  /** The catch-up resync is done: changes are logged and delayed again from now on. */
  void caughtUp() throws IOException {
    updateControls(c -> c.setCatchingUp(false));
    log.info("the delayed follower caught up after its spill log was full; changes are delayed again");
  }

  /** An applier for the catch-up resync; the caller closes it. */
  ChangeApplier directApplier(ChangeApplier.Listener listener) throws IOException {
    ChangeApplier a = new ChangeApplier(root, listener, options, faults);
    a.resyncTarget(true);
    return a;
  }

  // ---------------------------------------------------------------- DelayedFollower

  @Override
  public Duration delay() {
    return delay;
  }

  @Override
  public void pause() throws IOException {
    updateControls(c -> c.setPaused(true));
    log.warn("delayed follower paused: nothing more is applied until it is resumed");
  }

  @Override
  public void resume() throws IOException {
    updateControls(c -> c.setPaused(false).setApplyUntilMillis(0));
    log.info("delayed follower resumed: changes are applied once {} old", delay);
  }

  @Override
  public void applyUntil(Instant before) throws IOException {
    checkNotNull(before, "before");
    long millis = before.toEpochMilli();
    if (millis > clock.millis()) {
      throw new IllegalArgumentException("apply-until " + before + " is in the future: it would apply changes "
          + "before their delay");
    }
    updateControls(c -> c.setPaused(false).setApplyUntilMillis(Math.max(1, millis)));
    log.warn("delayed follower applies every change received before {}, then holds", before);
  }

  @Override
  public List<LoggedChange> log(Instant since, int limit) throws IOException {
    checkNotNull(since, "since");
    checkArgument(limit >= 0, "negative limit %s", limit);
    List<LoggedChange> out = new ArrayList<>();
    for (DelayLog.Logged l : spill.list(since.toEpochMilli(), limit)) {
      out.add(describe(l));
    }
    return out;
  }

  @Override
  public Status status() {
    DelayControls c = controls;
    long applied = spill.lastAppliedMillis();
    return new Status(delay, c.getPaused() || c.getApplyUntilMillis() != 0,
        c.getApplyUntilMillis() != 0 ? Optional.of(Instant.ofEpochMilli(c.getApplyUntilMillis())) : Optional.empty(),
        applied > 0 ? Optional.of(Instant.ofEpochMilli(applied)) : Optional.empty(),
        spill.backlogChanges(), spill.backlogBytes(), spill.diskBytes(), spill.capacityBytes(),
        c.getOverflowedAtMillis() != 0 ? Optional.of(Instant.ofEpochMilli(c.getOverflowedAtMillis()))
            : Optional.empty());
  }

  /** Why applying is stuck (a change that cannot be applied or decoded), or null. */
  String problem() {
    return problem;
  }

  // ---------------------------------------------------------------- applying

  private void run() {
    Progress progress = new Progress();
    ChangeApplier applier = null;
    try {
      while (!closed) {
        if (applier == null) {
          applier = newApplier(progress);
          progress.restart(spill.appliedSeq());
        }
        progress.record(applier, false);
        IOException failed = applier.failure();
        if (failed != null) {
          problem = "applying a logged change failed: " + failed.getMessage() + "; retrying in "
              + RETRY_AFTER_FAILURE.toSeconds() + " s";
          log.error("delayed follower: {}", problem);
          applier.close();
          applier = null;
          pauseFor(RETRY_AFTER_FAILURE.toMillis());
          continue;
        }
        DelayLog.Entry e = spill.peekAfter(progress.offered);
        if (e == null) {
          progress.record(applier, true);
          pauseFor(1000);
          continue;
        }
        DelayControls c = controls;
        DelaySchedule.Decision d = DelaySchedule.decide(clock.millis(), delay.toMillis(), c.getPaused(),
            c.getApplyUntilMillis() != 0 ? OptionalLong.of(c.getApplyUntilMillis()) : OptionalLong.empty(),
            e.receivedMillis());
        switch (d.action()) {
          case APPLY -> {
            FileChange change;
            try {
              change = ChangeProtos.fromProto(Change.parseFrom(e.header()), e.payload());
            } catch (InvalidProtocolBufferException | MalformedChangeException bad) {
              problem = "logged change " + e.seq() + " cannot be read (" + bad.getMessage()
                  + "); applying holds before it";
              log.error("delayed follower: {}", problem);
              progress.record(applier, true);
              pauseFor(RETRY_AFTER_FAILURE.toMillis());
              continue;
            }
            problem = null;
            progress.offer(applier, e, change);
          }
          case WAIT -> {
            progress.record(applier, true);
            pauseFor(Math.max(1, Math.min(1000, d.untilMillis() - clock.millis())));
          }
          case HOLD -> {
            progress.record(applier, true);
            pauseFor(1000);
          }
        }
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } catch (IOException | RuntimeException e) {
      problem = "the delayed follower stopped applying: " + e;
      log.error("{}", problem, e);
    } finally {
      if (applier != null) {
        try {
          // closing: record what is applied without waiting for the rest
          progress.record(applier, false);
        } catch (IOException | InterruptedException e) {
          log.warn("cannot record the applied point: {}", e.toString());
        }
        applier.close();
      }
    }
  }

  private ChangeApplier newApplier(Progress progress) throws IOException {
    ChangeApplier a = new ChangeApplier(root, new ChangeApplier.Listener() {
      @Override
      public void onApplied(long appliedSeq) {
        // progress is read by the loop; nothing to do on the apply thread
      }

      @Override
      public void onFailure(long seq, IOException cause) {
        wake();
      }

      @Override
      public void onRoom() {
        wake();
      }
    }, options, faults);
    // the tree lags the log by design: a namespace change that does not fit it is left to the
    // resync that the primary's repeated change in the log stands for
    a.resyncTarget(true);
    return a;
  }

  /** What was handed to the applier and what of it is recorded in the log as applied. */
  private final class Progress {
    /** Log seq of the last entry handed to the applier. */
    long offered;
    private long localSeq;
    private final ArrayDeque<long[]> inFlight = new ArrayDeque<>();
    private long recorded;
    private int sinceRecord;

    void restart(long appliedInLog) {
      offered = appliedInLog;
      recorded = appliedInLog;
      inFlight.clear();
      sinceRecord = 0;
    }

    void offer(ChangeApplier applier, DelayLog.Entry e, FileChange change) throws IOException, InterruptedException {
      long seq = ++localSeq;
      inFlight.add(new long[] {seq, e.seq()});
      offered = e.seq();
      boolean room = applier.offer(seq, change, () -> {}, false);
      if (!room) {
        applier.awaitApplied(seq - 1, Duration.ofSeconds(1));
      }
      if (++sinceRecord >= RECORD_EVERY) {
        record(applier, false);
      }
    }

    /** Records in the log how far the applier got; with {@code settle}, waits for it first (bounded). */
    void record(ChangeApplier applier, boolean settle) throws IOException, InterruptedException {
      if (settle && !inFlight.isEmpty()) {
        applier.awaitApplied(inFlight.peekLast()[0], Duration.ofSeconds(1));
      }
      long applied = applier.appliedSeq();
      long done = recorded;
      while (!inFlight.isEmpty() && inFlight.peekFirst()[0] <= applied) {
        done = inFlight.pollFirst()[1];
      }
      if (done > recorded) {
        spill.applied(done);
        recorded = done;
        sinceRecord = 0;
      }
    }
  }

  private void pauseFor(long millis) throws InterruptedException {
    synchronized (signal) {
      if (!closed) {
        signal.wait(millis);
      }
    }
  }

  private void wake() {
    synchronized (signal) {
      signal.notifyAll();
    }
  }

  // ---------------------------------------------------------------- controls

  private interface Edit {
    void apply(DelayControls.Builder b);
  }

  private void updateControls(Edit edit) throws IOException {
    synchronized (this) {
      DelayControls.Builder b = controls.toBuilder();
      edit.apply(b);
      DelayControls next = b.build();
      writeControls(dir, next);
      controls = next;
    }
    wake();
  }

  private static DelayControls readControls(Path dir) throws IOException {
    try {
      return DelayControls.parseFrom(Files.readAllBytes(dir.resolve(CONTROLS)));
    } catch (NoSuchFileException e) {
      return DelayControls.getDefaultInstance();
    } catch (InvalidProtocolBufferException e) {
      // the file is replaced atomically, so this is damage: hold rather than apply what the operator stopped
      log.error("the delayed follower's controls are unreadable ({}); starting paused", e.getMessage());
      return DelayControls.newBuilder().setPaused(true).build();
    }
  }

  private static void writeControls(Path dir, DelayControls controls) throws IOException {
    Path tmp = dir.resolve(CONTROLS + ".tmp");
    try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
        StandardOpenOption.TRUNCATE_EXISTING)) {
      ByteBuffer b = ByteBuffer.wrap(controls.toByteArray());
      while (b.hasRemaining()) {
        ch.write(b);
      }
      ch.force(true);
    }
    Files.move(tmp, dir.resolve(CONTROLS), StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    try (FileChannel d = FileChannel.open(dir, StandardOpenOption.READ)) {
      d.force(true);
    } catch (IOException e) {
      // some file systems cannot sync a directory; the rename is still atomic
    }
  }

  // ---------------------------------------------------------------- listing

  private static LoggedChange describe(DelayLog.Logged l) {
    Change c;
    try {
      c = Change.parseFrom(l.header());
    } catch (InvalidProtocolBufferException e) {
      return new LoggedChange(0, Instant.ofEpochMilli(l.receivedMillis()), "unreadable", "", Optional.empty(),
          l.payloadBytes(), l.applied());
    }
    String kind = switch (c.getOpCase()) {
      case CREATE_FILE -> "create";
      case MAKE_DIRECTORY -> "mkdir";
      case MOVE -> "rename";
      case CREATE_SYMBOLIC_LINK -> "symlink";
      case CREATE_LINK -> "link";
      case SET_TIMES -> "times";
      case SET_PERMISSIONS -> "permissions";
      case SET_OWNER -> "owner";
      case WRITE_FILE -> "write-file";
      case OP_NOT_SET -> "unknown";
      default -> c.getOpCase().name().toLowerCase(Locale.ROOT);
    };
    String path = "";
    Optional<String> target = Optional.empty();
    if (c.getOpCase() != Change.OpCase.OP_NOT_SET) {
      Descriptors.FieldDescriptor opField = c.getDescriptorForType().findFieldByNumber(c.getOpCase().getNumber());
      Message op = (Message) c.getField(opField);
      path = text(op, "path").or(() -> text(op, "source")).orElse("");
      target = text(op, "target").or(() -> text(op, "existing"));
    }
    return new LoggedChange(c.getSeq(), Instant.ofEpochMilli(l.receivedMillis()), kind, path, target,
        l.payloadBytes(), l.applied());
  }

  private static Optional<String> text(Message m, String field) {
    Descriptors.FieldDescriptor f = m.getDescriptorForType().findFieldByName(field);
    if (f == null || f.getType() != Descriptors.FieldDescriptor.Type.STRING) {
      return Optional.empty();
    }
    String v = (String) m.getField(f);
    return v.isEmpty() ? Optional.empty() : Optional.of(v);
  }

  /** Stops applying (what is being applied finishes) and closes the log. */
  @Override
  public void close() throws IOException {
    closed = true;
    // no interrupt: it would close the log's channels under a read or an fsync; every wait is bounded
    wake();
    try {
      thread.join(15_000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    spill.close();
  }
}
