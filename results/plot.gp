# plot.gp — the standard figure of one p4p run: three panels stacked in one page.
#
#   1. delivery-latency CDF      (delivery.delivered_ns - updates.created_ns, in seconds)
#   2. coverage over time        (series 'coverage': fraction of (update, node) pairs delivered)
#   3. bytes sent per node       (scalar 'bytes_out' of each node, sorted)
#
# The build embeds this file into the binary as the string plot_gp (tools/embed.sh);
# res_plot() in results/res_plot.c exports the data from a results database into small text
# files, sets the variables below, then feeds this script to gnuplot on standard input. To run
# it by hand, set them with -e:
#
#   fmt          'png' | 'svg' | 'pdf' | 'txt'
#   outfile      the output path; '' writes to standard output
#   title_text   the figure title, printed as is (no enhanced-text markup)
#   lat_file     rows "latency_s fraction" (a downsampled CDF, drawn as steps)
#   lat_n, lat_p50, lat_p99, lat_lo, lat_hi
#                deliveries, median and 99th percentile in s, x range in s
#   cov_file     rows "time_s coverage";  cov_n, cov_lo, cov_hi, cov_ylo, cov_yhi: samples, ranges
#   bytes_file   rows "rank bytes";       bytes_n, bytes_xhi, bytes_lo, bytes_hi: nodes, ranges
#
# A panel whose count is 0 says "no data" instead of plotting, since gnuplot refuses an empty
# data file. Ranges come from res_plot(), which guarantees lo < hi.

if (fmt eq 'png') {
    if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {
        set terminal pngcairo size 900,1200 noenhanced font 'sans,10'
    } else {
        set terminal png size 900,1200 noenhanced
    }
} else {
    if (fmt eq 'svg') {
        set terminal svg size 900,1200 noenhanced font 'sans,10'
    } else {
        if (fmt eq 'pdf') {
            if (strstrt(GPVAL_TERMINALS, 'pdfcairo') == 0) {
                print 'p4p: this gnuplot has no pdfcairo terminal'
                exit status 2
            }
            set terminal pdfcairo size 7in,9.5in noenhanced font 'sans,9'
        } else {
            set terminal dumb size 100,72 noenhanced
        }
    }
}
# A failed 'set output' aborts the block it is in, so the check stands outside it.
if (outfile ne '') {
    set output outfile
}
if (outfile ne '' && GPVAL_OUTPUT ne outfile) {
    print 'p4p: cannot write ' . outfile
    exit status 1
}

set multiplot layout 3,1 title title_text
set grid
set key off

# ---- 1. delivery-latency CDF ---------------------------------------------------------------
set xlabel 'latency (s)'
set ylabel 'fraction of deliveries'
set xrange [lat_lo:lat_hi]
set yrange [0:1]
if (lat_n > 0) {
    set title sprintf('Delivery latency CDF: %d deliveries, median %.4g s, p99 %.4g s', lat_n, lat_p50, lat_p99)
    plot lat_file using 1:2 with steps linewidth 2
} else {
    set title 'Delivery latency CDF'
    set label 1 'no data' at graph 0.5, 0.5 center
    plot 2
    unset label 1
}

# ---- 2. coverage over time -----------------------------------------------------------------
set xlabel 'time (s)'
set ylabel 'coverage (fraction delivered)'
set xrange [cov_lo:cov_hi]
set yrange [cov_ylo:cov_yhi]
set title 'Coverage over time'
if (cov_n > 0) {
    plot cov_file using 1:2 with lines linewidth 2
} else {
    set label 1 'no data' at graph 0.5, 0.5 center
    plot cov_yhi + 1
    unset label 1
}

# ---- 3. bytes sent per node ----------------------------------------------------------------
set xlabel 'nodes, ranked by bytes sent'
set ylabel 'bytes sent'
set xrange [0:bytes_xhi]
set yrange [bytes_lo:bytes_hi]
set format y '%.1s%c'
if (bytes_n > 0) {
    set title sprintf('Bytes sent per node: %d nodes', bytes_n)
    if (bytes_n <= 100) {
        plot bytes_file using 1:2 with linespoints linewidth 2 pointtype 7 pointsize 0.6
    } else {
        plot bytes_file using 1:2 with lines linewidth 2
    }
} else {
    set title 'Bytes sent per node'
    set label 1 'no data' at graph 0.5, 0.5 center
    plot bytes_hi + 1
    unset label 1
}

unset multiplot
if (outfile ne '') {
    unset output
}
